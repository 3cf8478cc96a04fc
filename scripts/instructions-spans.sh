#!/usr/bin/env bash
# What a `tracing` span (or event) costs, in instructions: the loop of
# observability-core's `span_cost` example run under valgrind's callgrind
# with N and 2N iterations, the difference divided by N (start-up and
# shutdown cancel out). Counts repeat to the instruction for the same
# binary, where criterion's timings (`cargo bench -p observability-core
# --bench spans`) vary by several percent on a shared machine.
#
#   scripts/instructions-spans.sh [N]
#
# Needs valgrind (installed from apt when missing). Nothing is exported: the
# provider has no exporter, so the rows count the span itself, and the OTLP
# log rows make no record (an exported record's cost depends on the export
# thread's timing; it is left out).
set -euo pipefail
cd "$(dirname "$0")/.."

n=${1:-20000}
command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
cargo build --release -q -p observability-core --example span_cost
bin=${CARGO_TARGET_DIR:-target}/release/examples/span_cost

instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" "$1" "$2" 2>&1 |
        awk '/refs:/ {gsub(",", "", $4); print $4}'
}

row() { printf '%-62s %10s\n' "$@"; }
row case "instr/span"
count() {
    local label=$1 case=$2 one two
    one=$(instructions "$case" "$n")
    two=$(instructions "$case" "$((2 * n))")
    row "$label" "$(((two - one) / n))"
}
count "registry alone (the floor of any tracing span)" span-registry-out
count "registry + a no-op layer under a per-layer filter" span-filtered-out
count "tracing-opentelemetry alone, sampled" span-bridge-sampled
count "tracing-opentelemetry alone, sampled out" span-bridge-out
count "init(), log output off, sampled" span-init-sampled
count "init(), log output off, sampled out" span-init-out
count "init(), log output off, eight fields, sampled" span8-init-sampled
count "init(), JSON lines at INFO, sampled" span-logs-sampled
count "init(), JSON lines at INFO, sampled out" span-logs-out
count "init(), JSON lines and OTLP log records, sampled out" span-otlplogs-out
count "an INFO event, JSON lines (no span)" event-logs-out
count "an INFO event, log output off (not a span event either)" event-init-out
count "a DEBUG event below the log filter, OTLP log records on" debug-otlplogs-out
