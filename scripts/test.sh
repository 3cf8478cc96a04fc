#!/usr/bin/env bash
# The whole check, as CI runs it, on a machine with only the Rust toolchain,
# python3 and apt: installs and starts what the tests need on 127.0.0.1,
# checks formatting, lints, builds once, runs every test and example check,
# builds the docs, and stops what it started.
#
#   scripts/test.sh            everything
#   SKIP_LINT=1 scripts/test.sh   skip fmt/clippy/doc (a faster local loop)
set -euo pipefail

cd "$(dirname "$0")/.."
root=$(pwd)
services_dir="$root/.test-services"
mkdir -p "$services_dir"

step() { printf '\n==> %s\n' "$*"; }

# shellcheck source=scripts/services.sh
export SERVICES_DIR="$services_dir"
source "$root/scripts/services.sh"

cleanup() {
    local status=$?
    stop_services
    exit "$status"
}
trap cleanup EXIT INT TERM

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1

if [ -z "${SKIP_LINT:-}" ]; then
    step "cargo fmt --check"
    cargo fmt --all -- --check

    step "cargo clippy (all targets, all features, warnings are errors)"
    cargo clippy --workspace --all-targets --all-features -- -D warnings
fi

step "README: every environment variable the code reads is in the configuration table"
python3 - <<'PY'
import re
names = re.findall(r'pub const \w+: &str = "([A-Z0-9_]+)";', open("observability-core/src/env.rs").read())
names += re.findall(r'"([A-Z][A-Z0-9_]{3,})"', open("observability-core/src/resource.rs").read())
readme = open("README.md").read()
table = readme[readme.index("## Configuration"):readme.index("## W3C Trace Context")]
missing = sorted({n for n in names if f"`{n}`" not in table})
assert not missing, f"not in the README's configuration table: {missing}"
print(f"{len(set(names))} variables, all documented")
PY

step "build (once, every target)"
cargo build --workspace --all-targets --all-features

# The real servers the integration tests need: RabbitMQ and an
# SQS-compatible server (moto). The OTLP receiver is part of the test crate
# (tests/src/lib.rs) and starts inside each test on 127.0.0.1.
step "start RabbitMQ and the SQS-compatible server on 127.0.0.1"
start_services

step "cargo test"
test_log="$services_dir/cargo-test.log"
cargo test --workspace --all-features 2>&1 | tee "$test_log"
passed=$(grep -o '[0-9]* passed' "$test_log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -o '[0-9]* failed' "$test_log" | awk '{s += $1} END {print s + 0}')

step "examples: quickstart prints its trace tree and JSON logs that share its trace id"
env -u OTEL_TRACES_EXPORTER -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_LOG_FORMAT \
    timeout 30 "${CARGO_TARGET_DIR:-$root/target}/debug/quickstart" \
    >"$services_dir/quickstart.out" 2>"$services_dir/quickstart.err"
cat "$services_dir/quickstart.err" "$services_dir/quickstart.out"
grep -q '^trace [0-9a-f]\{32\} · 7 spans' "$services_dir/quickstart.err"
grep -q '└─ charge_card .*ERROR: payment declined' "$services_dir/quickstart.err"
trace_id=$(grep -o '^trace [0-9a-f]\{32\}' "$services_dir/quickstart.err" | cut -d' ' -f2)
python3 - "$services_dir/quickstart.out" "$trace_id" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert lines, "no JSON log lines"
inside = [l for l in lines if l.get("trace_id") == sys.argv[2]]
assert len(inside) >= 3, f"log lines with trace {sys.argv[2]}: {len(inside)}"
print(f"{len(lines)} JSON log lines, {len(inside)} in trace {sys.argv[2]}")
PY

bin_dir="${CARGO_TARGET_DIR:-$root/target}/debug"

step "examples: order-flow (the README's first command) runs alone and prints trees and correlated logs"
env -u OTEL_TRACES_EXPORTER -u OTEL_EXPORTER_OTLP_ENDPOINT -u OTEL_LOG_FORMAT -u AMQP_ADDR -u SQS_ENDPOINT \
    timeout 60 "$bin_dir/order-flow" >"$services_dir/order-flow.out" 2>"$services_dir/order-flow.err"
cat "$services_dir/order-flow.err"
grep -q '└─ process orders (consumer)' "$services_dir/order-flow.err"
grep -q 'ERROR: payment provider answered 502' "$services_dir/order-flow.err"
grep -q '^  cron reconcile' "$services_dir/order-flow.err"
python3 - "$services_dir/order-flow.out" "$services_dir/order-flow.err" <<'PY'
import json, re, sys
trees = set(re.findall(r"^trace ([0-9a-f]{32})", open(sys.argv[2]).read(), re.M))
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
logged = {l["trace_id"] for l in lines if "trace_id" in l}
assert len(trees) == 5, f"5 traces expected, got {len(trees)}"
assert trees <= logged, f"traces without log lines: {trees - logged}"
# Each part is a service of its own: the service column says who did what.
err = open(sys.argv[2]).read()
for block in err.split("\n\n"):
    if not block.startswith("trace ") or "POST /orders (server)" not in block:
        continue
    rows = [(line.lstrip(" └├─│").split("  ")[0], line) for line in block.splitlines()[1:]]
    assert rows[0][0] == "POST /orders (server)" and " order-flow-gateway " in rows[0][1], block
    for name, service in [("price", "order-flow-api"),
                          ("process orders (consumer)", "order-flow-worker"),
                          ("charge", "order-flow-worker")]:
        row = next((r for k, r in rows if k == name), None)
        assert row and f" {service} " in row, f"{name} is not {service}'s:\n{block}"
services = {l["service.name"] for l in lines if "trace_id" in l}
assert {"order-flow-gateway", "order-flow-api", "order-flow-worker"} <= services, services
print(f"{len(trees)} trees, {len(lines)} JSON log lines, every tree's trace id in the logs, each part's service named")
PY
for example in axum-server hyper-server tonic-health; do
    step "examples: $example runs and prints its trace"
    out=$(env -u OTEL_TRACES_EXPORTER timeout 30 "$bin_dir/$example" 2>&1)
    printf '%s\n' "$out" | tail -12
    grep -q '^trace [0-9a-f]\{32\}' <<<"$out"
    grep -q '(server)' <<<"$out"
done

for example in sqs-worker rabbitmq-worker; do
    step "examples: $example carries one trace through the real broker"
    out=$(env -u OTEL_TRACES_EXPORTER timeout 60 "$bin_dir/$example" 2>&1 >/dev/null)
    printf '%s\n' "$out" | tail -6
    grep -q '(producer)' <<<"$out"
    grep -q '└─ process .* (consumer)' <<<"$out"
done

step "examples: w3c-test-service against the W3C harness-lite"
python3 scripts/w3c-harness-lite.py "$bin_dir/w3c-test-service"

if [ -z "${SKIP_LINT:-}" ]; then
    step "cargo doc (warnings are errors)"
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features

    # Every feature of every library crate on its own, and none: each
    # builds without a warning (CI builds all of them together above).
    step "feature matrix: each feature alone, and none, clippy-clean"
    for spec in \
        "observability-core:" "observability-core:otlp-grpc" "observability-core:otlp-http" "observability-core:otlp-grpc-logs" "observability-core:testing" \
        "observability-core:otlp-http,rustls-ring" "observability-core:otlp-http,rustls-aws-lc" \
        "observability-http:" "observability-http:axum" "observability-http:reqwest" "observability-http:reqwest-0-12" \
        "observability-messaging:" "observability-messaging:sqs" "observability-messaging:amqp" \
        "observability-logging:" "observability-metrics:" \
        "observability-propagation:" "observability-propagation:b3" "observability-propagation:jaeger" \
        "observability-propagation:xray" "observability-propagation:ottrace" \
        "observability-core:propagators"; do
        crate=${spec%%:*} feature=${spec#*:}
        cargo clippy -q -p "$crate" --no-default-features ${feature:+--features "$feature"} -- -D warnings
    done

    # What `cargo publish` would upload, built on its own: metadata, README
    # and every file the crates need, in dependency order.
    step "cargo package: the six library crates, verified"
    # Cargo verifies each crate against the others through a temporary
    # registry, and takes a registry crate of an unchanged version for
    # unchanged: what an earlier run unpacked and built of our crates would
    # stand in for this run's. Both go first.
    rm -rf "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/observability-*-0.1.0
    rm -rf "${CARGO_TARGET_DIR:-$root/target}"/debug/.fingerprint/observability-* \
        "${CARGO_TARGET_DIR:-$root/target}"/debug/deps/*observability_*
    cargo package -q --allow-dirty -p observability-logging -p observability-propagation \
        -p observability-metrics -p observability-core -p observability-http -p observability-messaging
fi

step "all checks passed"
echo "tests: $passed passed, $failed failed"
