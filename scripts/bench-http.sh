#!/usr/bin/env bash
# HTTP load benchmark: axum hello world bare, and with ServerLayer exporting
# every span over OTLP (HTTP/protobuf, or gRPC) to a counting receiver, and
# with sampling off. Two references run in the same rounds: the "API floor",
# the least a layer on the OpenTelemetry API does (extract, a span named by
# the method without attributes, made current for the handler, ended with
# the response), sampled and not; "context only" (extract and make a
# child context current for the handler, no span), what anything that keeps
# handler spans and log lines in the trace pays; and "identity layer"
# (tower's Identity through Router::layer), what the router's wrapping of
# any middleware costs before the middleware does anything. The server process (one
# tokio worker and its export thread) pinned to core 0; wrk -t1 -c32 and the
# receiver pinned to core 1; runs interleaved. Prints requests/s, p99, CPU
# per request and its user-space part (the rest is the kernel's: sockets)
# and RSS, each with its ratio to bare, how busy the server's
# core was (below 100 %, something other than the server's CPU held the
# rate back), and how many spans reached the receiver, with the export
# thread's part of the CPU per request (already in the row's); at the end,
# each case's range over the rounds and its best rate over bare's best.
#
#   scripts/bench-http.sh [seconds-per-run] [rounds]
#   PROTOCOL=grpc scripts/bench-http.sh ...   (default http/protobuf)
#   PAIRED=1 scripts/bench-http.sh ...        (bare again before every case)
#
# On a host whose speed drifts within minutes, PAIRED=1 compares each case
# with a bare run made just before it rather than with the round's first,
# and the summary adds each case's median ratio over the rounds.
#
# Loopback only; each run is bounded by its duration.
set -euo pipefail
cd "$(dirname "$0")/.."

duration=${1:-10}
rounds=${2:-3}
port=3917
grpc=127.0.0.1:14317
http=127.0.0.1:14318

if ! command -v wrk >/dev/null; then
    apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
cargo build --release -q -p examples --bin http-bench-server
cargo build --release -q -p tests --bin otlp-receiver
target=${CARGO_TARGET_DIR:-target}/release

cores=$(nproc)
pin_server=() pin_load=()
if [ "$cores" -ge 2 ] && command -v taskset >/dev/null; then
    pin_server=(taskset -c 0) pin_load=(taskset -c 1)
fi

work=$(mktemp -d)
cleanup() {
    [ -n "${receiver_pid:-}" ] && kill "$receiver_pid" 2>/dev/null || true
    [ -n "${server_pid:-}" ] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# The receiver runs until its stdin closes.
mkfifo "$work/receiver-in"
OTLP_RECEIVER_NAGLE=${NAGLE:-0} "${pin_load[@]}" "$target/otlp-receiver" "$grpc" "$http" <"$work/receiver-in" >"$work/receiver.log" &
receiver_pid=$!
exec 3>"$work/receiver-in"

# shellcheck source=scripts/bench-lib.sh
source scripts/bench-lib.sh

spans_received() { { grep -o 'spans=[0-9]*' "$work/receiver.log" || echo spans=0; } | tail -1 | cut -d= -f2; }

# CPU time of a process so far, in clock ticks: user and system.
cpu_ticks() { awk '{print $14, $15}' "/proc/$1/stat"; }
# The same for the process's export thread ("observability-export", which
# the kernel names by its first 15 bytes); "0 0" when it has none.
export_ticks() {
    local task user=0 sys=0
    for task in /proc/"$1"/task/*; do
        if [ "$(cat "$task/comm" 2>/dev/null)" = observability-e ]; then
            read -r user sys < <(awk '{print $14, $15}' "$task/stat")
        fi
    done
    echo "$user $sys"
}
# TICKS clock ticks at HZ over REQUESTS requests, in microseconds each.
per_request() { awk -v t="$1" -v hz="$2" -v n="$3" 'BEGIN {printf "%.2f", t / hz * 1e6 / n}'; }
# Resident memory of a process, in KiB.
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# A wrk latency ("417.00us", "1.12ms", "2.01s") in microseconds.
micros() {
    awk -v v="$1" 'BEGIN {
        n = v + 0; unit = v; sub(/^[0-9.]+/, "", unit)
        printf "%.0f", n * (unit == "s" ? 1e6 : unit == "ms" ? 1e3 : 1)
    }'
}

# run NAME MODE [env...] -> "rps p99_us requests cpu_us_per_request busy_percent rss_kib
#   user_us_per_request"
run() {
    local name=$1 mode=$2
    shift 2
    env "$@" "${pin_server[@]}" "$target/http-bench-server" "$mode" "127.0.0.1:$port" \
        >"$work/server-$name.log" 2>&1 &
    server_pid=$!
    wait_port "$port"
    local user_before sys_before user_after sys_after rss start_ns end_ns
    local e_user_before e_sys_before e_user_after e_sys_after
    read -r user_before sys_before < <(cpu_ticks "$server_pid")
    read -r e_user_before e_sys_before < <(export_ticks "$server_pid")
    start_ns=$(date +%s%N)
    "${pin_load[@]}" wrk -t1 -c32 -d"${duration}s" --latency -H "traceparent: $TP" \
        "http://127.0.0.1:$port/" >"$work/wrk-$name.txt"
    read -r user_after sys_after < <(cpu_ticks "$server_pid")
    read -r e_user_after e_sys_after < <(export_ticks "$server_pid")
    end_ns=$(date +%s%N)
    rss=$(rss_kib "$server_pid")
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=
    local rps p99 requests
    rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk-$name.txt")
    p99=$(micros "$(awk '$1 == "99%" {print $2}' "$work/wrk-$name.txt")")
    requests=$(awk '/requests in/ {print $1}' "$work/wrk-$name.txt")
    local cpu_us user_us busy hz user=$((user_after - user_before))
    local ticks=$((user + sys_after - sys_before))
    hz=$(getconf CLK_TCK)
    cpu_us=$(per_request "$ticks" "$hz" "$requests")
    user_us=$(per_request "$user" "$hz" "$requests")
    busy=$(awk -v t="$ticks" -v hz="$hz" -v ns=$((end_ns - start_ns)) \
        'BEGIN {printf "%.0f", t / hz / (ns / 1e9) * 100}')
    # The export thread's share of the CPU time per request (its encoding
    # and sends), printed under the exporting cases' rows.
    local e_user=$((e_user_after - e_user_before))
    local e_ticks=$((e_user + e_sys_after - e_sys_before))
    echo "export thread: $(per_request "$e_ticks" "$hz" "$requests") us cpu a request," \
        "$(per_request "$e_user" "$hz" "$requests") us user" >"$work/export-$name.txt"
    echo "$rps $p99 $requests $cpu_us $busy $rss $user_us"
}

# PROTOCOL=grpc exports over gRPC instead.
export OTEL_EXPORTER_OTLP_PROTOCOL=${PROTOCOL:-http/protobuf}
if [ "$OTEL_EXPORTER_OTLP_PROTOCOL" = grpc ]; then
    export OTEL_EXPORTER_OTLP_ENDPOINT="http://$grpc"
else
    export OTEL_EXPORTER_OTLP_ENDPOINT="http://$http"
fi
export OTEL_BSP_MAX_QUEUE_SIZE=${OTEL_BSP_MAX_QUEUE_SIZE:-2048}
sampled_tp="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
unsampled_tp="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"

row_format='%-6s %-28s %10s %6s %8s %6s %8s %6s %7s %6s %5s %8s %6s %8s %8s\n'
# shellcheck disable=SC2059
printf "$row_format" round case "req/s" ratio "p99 us" ratio "cpu us" ratio "user us" ratio busy \
    "rss KiB" ratio "+KiB" spans
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

# bare ROUND: runs bare, prints its row and keeps its numbers (b_rps,
# b_p99, b_cpu, b_rss, b_user) for the ratios of the cases after it.
bare() {
    read -r b_rps b_p99 _ b_cpu b_busy b_rss b_user < <(TP=$sampled_tp run bare bare)
    # shellcheck disable=SC2059
    printf "$row_format" "$1" bare "$b_rps" 1.00 "$b_p99" 1.00 "$b_cpu" 1.00 "$b_user" 1.00 \
        "$b_busy%" "$b_rss" 1.00 0 ""
    echo "bare|||||||$b_rps" >>"$work/rows"
}

# measure ROUND LABEL NAME MODE TRACEPARENT [exported]: runs one case and
# prints its row with ratios to the last bare run (the round's, or with
# PAIRED=1 one made just before); with "exported", also the spans that
# reached the receiver.
measure() {
    local round=$1 label=$2 name=$3 mode=$4 tp=$5 exported=${6:-}
    local before after spans="" rps p99 n cpu busy rss user
    if [ "${PAIRED:-0}" = 1 ]; then
        bare "$round"
    fi
    before=$(spans_received)
    read -r rps p99 n cpu busy rss user < <(TP=$tp run "$name" "$mode")
    if [ -n "$exported" ]; then
        sleep 1
        after=$(spans_received)
        spans=$((${after:-0} - ${before:-0}))
    fi
    local r_rps r_p99 r_cpu
    r_rps=$(ratio "$rps" "$b_rps") r_p99=$(ratio "$p99" "$b_p99") r_cpu=$(ratio "$cpu" "$b_cpu")
    # shellcheck disable=SC2059
    printf "$row_format" "$round" "$label" "$rps" "$r_rps" "$p99" "$r_p99" "$cpu" "$r_cpu" \
        "$user" "$(ratio "$user" "$b_user")" "$busy%" "$rss" "$(ratio "$rss" "$b_rss")" "$((rss - b_rss))" "$spans"
    echo "$label|$r_rps|$r_p99|$r_cpu|$busy|$((rss - b_rss))|$rps" >>"$work/rows"
}

for round in $(seq "$rounds"); do
    if [ "${PAIRED:-0}" != 1 ]; then
        bare "$round"
    fi

    measure "$round" "identity layer" identity identity "$unsampled_tp"
    measure "$round" "layer, sampled, OTLP export" sampled layer "$sampled_tp" exported
    grep -h '^exported' "$work/server-sampled.log" | sed 's/^/       server: /'
    sed 's/^/       /' "$work/export-sampled.txt"
    measure "$round" "layer, sampled out" sampled_out layer "$unsampled_tp"
    measure "$round" "API floor, sampled, OTLP" floor_sampled floor "$sampled_tp" exported
    sed 's/^/       /' "$work/export-floor_sampled.txt"
    measure "$round" "API floor, sampled out" floor_out floor "$unsampled_tp"
    measure "$round" "context only, no span" context context "$unsampled_tp"
done
exec 3>&-

# Across rounds: the range of each case's ratios, and the ratio of its
# best rate to bare's best. On a machine whose speed drifts from run to run
# (a shared host), noise only ever slows a run down, so the best of several
# rounds is the steadiest estimate of what each case can do.
echo
echo "over $rounds round(s), min-max of the ratios to bare (busy and +RSS as measured),"
echo "each case's best req/s over bare's best, and the median of its req/s ratios:"
awk -F'|' '
    $1 == "bare" { if ($8 > best_bare) best_bare = $8; next }
    !($1 in n) { order[++cases] = $1 }
    {
        n[$1]++
        ratios[$1, n[$1]] = $2
        if ($7 > best[$1]) best[$1] = $7
        for (i = 2; i <= 6; i++) {
            if (n[$1] == 1 || $i < lo[$1, i]) lo[$1, i] = $i
            if (n[$1] == 1 || $i > hi[$1, i]) hi[$1, i] = $i
        }
    }
    END {
        printf "%-28s %11s %11s %11s %9s %11s %6s %6s\n", "case", "req/s", "p99", "cpu/req", "busy %", "+RSS KiB", "best", "median"
        for (c = 1; c <= cases; c++) {
            k = order[c]
            printf "%-28s", k
            for (i = 2; i <= 6; i++) printf " %5s-%-5s", lo[k, i], hi[k, i]
            # The median ratio: sorted by insertion (a few rounds).
            m = n[k]
            for (i = 1; i <= m; i++) sorted[i] = ratios[k, i] + 0
            for (i = 2; i <= m; i++) {
                v = sorted[i]
                for (j = i - 1; j >= 1 && sorted[j] > v; j--) sorted[j + 1] = sorted[j]
                sorted[j + 1] = v
            }
            median = m % 2 ? sorted[(m + 1) / 2] : (sorted[m / 2] + sorted[m / 2 + 1]) / 2
            printf " %6.2f %6.2f\n", best[k] / best_bare, median
        }
    }' "$work/rows"
