#!/usr/bin/env bash
# Where a request's time goes, in instructions: the axum hello world of
# scripts/bench-http.sh run under valgrind's callgrind, bare and in each
# mode, and the user-space instructions per request each case costs (every
# thread counted, the export thread too), with the difference to bare.
# Instruction counts of the cases that export nothing repeat to within about
# 50 from run to run, where timings on a shared machine vary by several
# percent; they leave out the kernel (most of a bare request's CPU time is
# its socket calls). The exporting cases count the export thread, whose cost
# per span depends on how full its batches get, which follows wrk's request
# rate: compare them between commits measured one after the other.
#
#   scripts/instructions-http.sh [seconds-per-case]
#
# The layer cases without "metrics" set OTEL_METRICS_EXPORTER=none; the
# "+ metrics" cases keep the default (OTLP metrics, the layer's RED
# instruments recording on every request).
#
# Counting starts after a warm-up, so start-up costs are left out. Needs
# valgrind and wrk (both installed from apt when missing). Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-8}
port=3921
http=127.0.0.1:14338 grpc=127.0.0.1:14337

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
fi
cargo build --release -q -p examples --bin http-bench-server
cargo build --release -q -p tests --bin otlp-receiver
target=${CARGO_TARGET_DIR:-target}/release

work=$(mktemp -d)
cleanup() {
    exec 3>&- 2>/dev/null || true
    [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
    [ -n "${receiver_pid:-}" ] && kill "$receiver_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

mkfifo "$work/receiver-in"
"$target/otlp-receiver" "$grpc" "$http" <"$work/receiver-in" >"$work/receiver.log" &
receiver_pid=$!
exec 3>"$work/receiver-in"

export OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf OTEL_EXPORTER_OTLP_ENDPOINT="http://$http"

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

# count NAME MODE TRACEPARENT [env...] -> instructions per request
count() {
    local name=$1 mode=$2 tp=$3
    shift 3
    local header=()
    [ "$tp" != none ] && header=(-H "traceparent: $tp")
    env "$@" valgrind --tool=callgrind --collect-atstart=yes \
        --callgrind-out-file="$work/$name.%p" \
        "$target/http-bench-server" "$mode" "127.0.0.1:$port" >"$work/$name.log" 2>&1 &
    server_pid=$!
    local pid=$server_pid
    # valgrind starts the server slowly.
    wait_port "$port" 20
    wrk -t1 -c32 -d2s "${header[@]}" "http://127.0.0.1:$port/" >/dev/null
    callgrind_control -z "$server_pid" >/dev/null 2>&1
    wrk -t1 -c32 -d"${seconds}s" "${header[@]}" "http://127.0.0.1:$port/" >"$work/$name.wrk"
    callgrind_control -d "$server_pid" >/dev/null 2>&1
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=
    local requests total
    requests=$(awk '/requests in/ {print $1}' "$work/$name.wrk")
    # The dump taken after the measured run (the one at exit is "$name.$pid").
    total=$(callgrind_annotate "$work/$name.$pid.1" 2>/dev/null |
        awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    awk -v t="$total" -v n="$requests" 'BEGIN {printf "%.0f", t / n}'
}

sampled_tp="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
unsampled_tp="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"

row() { printf '%-44s %10s %10s\n' "$@"; }
row case "instr/req" "+ to bare"
bare=$(count bare bare "$sampled_tp")
row "bare" "$bare" 0
case_row() {
    local label=$1 n
    shift
    n=$(count "$@")
    row "$label" "$n" "$((n - bare))"
}
case_row "identity layer (the router's wrapping)" identity identity "$unsampled_tp"
case_row "context only, no span" context context "$unsampled_tp"
case_row "lean context: W3C read directly, no span" lean lean "$unsampled_tp"
case_row "API floor, sampled out" floor_out floor "$unsampled_tp"
case_row "layer, sampled out (caller's flag)" layer_out layer "$unsampled_tp" OTEL_METRICS_EXPORTER=none
case_row "layer, sampler always_off" layer_off layer "$sampled_tp" OTEL_TRACES_SAMPLER=always_off OTEL_METRICS_EXPORTER=none
case_row "layer + metrics, sampled out" metrics_out layer "$unsampled_tp"
case_row "API floor, sampled, OTLP export" floor_sampled floor "$sampled_tp" OTEL_METRICS_EXPORTER=none
case_row "layer, sampled, OTLP export" layer_sampled layer "$sampled_tp" OTEL_METRICS_EXPORTER=none
case_row "layer + metrics, sampled, OTLP export" metrics_sampled layer "$sampled_tp"
