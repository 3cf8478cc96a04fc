#!/usr/bin/env bash
# Sustained export: the highest span rate one process (pinned to one core)
# exports over OTLP (HTTP/protobuf unless PROTOCOL=grpc) without dropping,
# to a counting receiver pinned to the other core. Loopback only; each run lasts a few seconds.
#
#   scripts/bench-export.sh [seconds-per-rate] [rates...]
#   PROTOCOL=grpc scripts/bench-export.sh ...   (default http/protobuf)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
shift || true
rates=("$@")
[ ${#rates[@]} -gt 0 ] || rates=(25000 50000 100000 150000 200000 300000)
grpc=127.0.0.1:14327 http=127.0.0.1:14328

cargo build --release -q -p tests --bin otlp-receiver --bin span-blaster
target=${CARGO_TARGET_DIR:-target}/release
pin_blaster=() pin_receiver=()
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    pin_blaster=(taskset -c 0) pin_receiver=(taskset -c 1)
fi
work=$(mktemp -d)
trap 'exec 3>&- 2>/dev/null; kill $receiver_pid 2>/dev/null; rm -rf "$work"' EXIT
mkfifo "$work/in"
OTLP_RECEIVER_NAGLE=${NAGLE:-0} "${pin_receiver[@]}" "$target/otlp-receiver" "$grpc" "$http" <"$work/in" >"$work/receiver.log" &
receiver_pid=$!
exec 3>"$work/in"
sleep 0.5

best=0
for rate in "${rates[@]}"; do
    protocol=${PROTOCOL:-http/protobuf}
    endpoint="http://$http"
    [ "$protocol" = grpc ] && endpoint="http://$grpc"
    line=$(OTEL_EXPORTER_OTLP_ENDPOINT="$endpoint" OTEL_EXPORTER_OTLP_PROTOCOL="$protocol" \
        OTEL_BSP_MAX_QUEUE_SIZE=65536 OTEL_BSP_SCHEDULE_DELAY=100 \
        "${pin_blaster[@]}" "$target/span-blaster" "$rate" "$seconds")
    echo "$line"
    dropped=$(sed -n 's/.*dropped=\([0-9]*\).*/\1/p' <<<"$line")
    if [ "$dropped" = 0 ]; then best=$rate; fi
done
echo "highest sustained rate without drops (${PROTOCOL:-http/protobuf}): $best spans/s"
