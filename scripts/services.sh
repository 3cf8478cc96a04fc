# Services the integration tests need, started on 127.0.0.1 and stopped
# again. Sourced by scripts/test.sh; usable alone:
#
#   source scripts/services.sh && start_services   # exports the endpoints
#   stop_services
#
# Installs what is missing: RabbitMQ from Debian's packages, moto (an
# SQS-compatible server) from PyPI.

SERVICES_DIR=${SERVICES_DIR:-$(pwd)/.test-services}
RABBITMQ_PORT=${RABBITMQ_PORT:-5673}
RABBITMQ_DIST_PORT=${RABBITMQ_DIST_PORT:-25673}
SQS_PORT=${SQS_PORT:-4566}
RABBITMQ_NODE=obs-test@localhost

rabbitmq_env() {
    env HOME="$SERVICES_DIR/rabbitmq" \
        RABBITMQ_NODENAME="$RABBITMQ_NODE" \
        RABBITMQ_MNESIA_BASE="$SERVICES_DIR/rabbitmq/mnesia" \
        RABBITMQ_LOG_BASE="$SERVICES_DIR/rabbitmq/log" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
        RABBITMQ_NODE_PORT="$RABBITMQ_PORT" \
        RABBITMQ_DIST_PORT="$RABBITMQ_DIST_PORT" \
        RABBITMQ_PID_FILE="$SERVICES_DIR/rabbitmq/pid" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$SERVICES_DIR/rabbitmq/enabled_plugins" \
        RABBITMQ_CONFIG_FILE="$SERVICES_DIR/rabbitmq/rabbitmq" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$SERVICES_DIR/rabbitmq/advanced.config" \
        "$@"
}

install_services() {
    if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
        echo "installing rabbitmq-server (Debian)"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
    fi
    if ! python3 -c 'import moto.server' 2>/dev/null; then
        echo "installing moto[server] (PyPI)"
        python3 -m pip install -q 'moto[server]'
    fi
    # An independent parser of the Prometheus text format and OpenMetrics
    # (with exemplars) for the scrape test.
    if ! python3 -c 'import prometheus_client.openmetrics.parser, prometheus_client.parser' 2>/dev/null; then
        echo "installing prometheus-client (PyPI)"
        python3 -m pip install -q prometheus-client
    fi
    # An independent implementation of B3, Jaeger, X-Ray and OT for the
    # propagator interop test.
    if ! python3 -c 'import opentelemetry.propagators.b3, opentelemetry.propagators.jaeger, opentelemetry.propagators.ot_trace, opentelemetry.propagators.aws' 2>/dev/null; then
        echo "installing the opentelemetry-python propagators (PyPI)"
        python3 -m pip install -q opentelemetry-api opentelemetry-propagator-b3 \
            opentelemetry-propagator-jaeger opentelemetry-propagator-ot-trace \
            opentelemetry-propagator-aws-xray
    fi
}

start_rabbitmq() {
    rm -rf "$SERVICES_DIR/rabbitmq"
    mkdir -p "$SERVICES_DIR/rabbitmq"
    : >"$SERVICES_DIR/rabbitmq/enabled_plugins"
    rabbitmq_env /usr/lib/rabbitmq/bin/rabbitmq-server >"$SERVICES_DIR/rabbitmq.log" 2>&1 &
    echo "stop_rabbitmq" >>"$SERVICES_DIR/stop.sh"
    local started=$SECONDS
    until rabbitmq_env /usr/lib/rabbitmq/bin/rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1; do
        if [ $((SECONDS - started)) -gt 90 ]; then
            echo "RabbitMQ did not start within 90 s; its log:" >&2
            tail -40 "$SERVICES_DIR/rabbitmq.log" >&2
            return 1
        fi
        sleep 1
    done
    echo "RabbitMQ accepts connections on 127.0.0.1:$RABBITMQ_PORT after $((SECONDS - started)) s"
    export AMQP_ADDR="amqp://guest:guest@127.0.0.1:$RABBITMQ_PORT/%2f"
}

stop_rabbitmq() {
    # With the pid file, rabbitmqctl waits until the node process has exited.
    rabbitmq_env /usr/lib/rabbitmq/bin/rabbitmqctl -q stop "$SERVICES_DIR/rabbitmq/pid" >/dev/null 2>&1 || true
    # epmd outlives the node.
    epmd -kill >/dev/null 2>&1 || true
}

start_sqs() {
    python3 -m moto.server -H 127.0.0.1 -p "$SQS_PORT" >"$SERVICES_DIR/moto.log" 2>&1 &
    local pid=$!
    echo "kill $pid 2>/dev/null || true" >>"$SERVICES_DIR/stop.sh"
    local started=$SECONDS
    until (exec 9<>"/dev/tcp/127.0.0.1/$SQS_PORT") 2>/dev/null; do
        if [ $((SECONDS - started)) -gt 60 ]; then
            echo "moto did not start within 60 s; its log:" >&2
            tail -40 "$SERVICES_DIR/moto.log" >&2
            return 1
        fi
        sleep 0.2
    done
    echo "moto (SQS) accepts connections on 127.0.0.1:$SQS_PORT after $((SECONDS - started)) s"
    export SQS_ENDPOINT="http://127.0.0.1:$SQS_PORT"
}

start_services() {
    mkdir -p "$SERVICES_DIR"
    install_services
    start_sqs
    start_rabbitmq
}

stop_services() {
    # Each line is a command registered by a start function, run here so
    # that it can call this file's functions.
    if [ -f "$SERVICES_DIR/stop.sh" ]; then
        while IFS= read -r command; do
            eval "$command" || true
        done <"$SERVICES_DIR/stop.sh"
        rm -f "$SERVICES_DIR/stop.sh"
    fi
}
