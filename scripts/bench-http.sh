#!/usr/bin/env bash
# HTTP load benchmark: axum hello world bare, and with ServerLayer exporting
# every span over OTLP/gRPC to a counting receiver, and with sampling off.
# One tokio worker pinned to core 0, wrk -t1 -c32 pinned to core 1, runs
# interleaved. Prints requests/s, p99 and the ratio to bare of each round,
# and how many spans reached the receiver.
#
#   scripts/bench-http.sh [seconds-per-run] [rounds]
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
"$target/otlp-receiver" "$grpc" "$http" <"$work/receiver-in" >"$work/receiver.log" &
receiver_pid=$!
exec 3>"$work/receiver-in"

wait_port() {
    for _ in $(seq 100); do
        (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}

spans_received() { { grep -o 'spans=[0-9]*' "$work/receiver.log" || echo spans=0; } | tail -1 | cut -d= -f2; }

# run NAME MODE [env...] -> "rps p99_ms requests"
run() {
    local name=$1 mode=$2
    shift 2
    env "$@" "${pin_server[@]}" "$target/http-bench-server" "$mode" "127.0.0.1:$port" \
        >"$work/server-$name.log" 2>&1 &
    server_pid=$!
    wait_port "$port"
    "${pin_load[@]}" wrk -t1 -c32 -d"${duration}s" --latency -H "traceparent: $TP" \
        "http://127.0.0.1:$port/" >"$work/wrk-$name.txt"
    kill -TERM "$server_pid"
    wait "$server_pid" || true
    server_pid=
    local rps p99 requests
    rps=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk-$name.txt")
    p99=$(awk '$1 == "99%" {print $2}' "$work/wrk-$name.txt")
    requests=$(awk '/requests in/ {print $1}' "$work/wrk-$name.txt")
    echo "$rps $p99 $requests"
}

export OTEL_EXPORTER_OTLP_ENDPOINT="http://$grpc"
export OTEL_EXPORTER_OTLP_PROTOCOL=grpc
export OTEL_BSP_MAX_QUEUE_SIZE=65536
sampled_tp="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
unsampled_tp="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"

printf '%-8s %-30s %12s %10s %8s %12s %12s\n' round case "req/s" p99 ratio requests spans
for round in $(seq "$rounds"); do
    before=$(spans_received); before=${before:-0}
    read -r bare_rps bare_p99 bare_n < <(TP=$sampled_tp run bare bare)
    printf '%-8s %-30s %12s %10s %8s %12s\n' "$round" "bare" "$bare_rps" "$bare_p99" "1.00" "$bare_n"

    read -r s_rps s_p99 s_n < <(TP=$sampled_tp run sampled layer)
    sleep 1
    after=$(spans_received); after=${after:-0}
    printf '%-8s %-30s %12s %10s %8.2f %12s %12s\n' "$round" "layer, sampled, OTLP export" \
        "$s_rps" "$s_p99" "$(awk -v a="$s_rps" -v b="$bare_rps" 'BEGIN {print a / b}')" "$s_n" "$((after - before))"
    grep -h exported "$work/server-sampled.log" | sed 's/^/         server: /'

    read -r o_rps o_p99 o_n < <(TP=$unsampled_tp run sampled_out layer)
    printf '%-8s %-30s %12s %10s %8.2f %12s\n' "$round" "layer, sampled out" \
        "$o_rps" "$o_p99" "$(awk -v a="$o_rps" -v b="$bare_rps" 'BEGIN {print a / b}')" "$o_n"
done
exec 3>&-
