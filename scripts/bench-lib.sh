# Shared by the benchmark scripts (sourced, not run).

# wait_port PORT [SECONDS]: waits until something listens on 127.0.0.1:PORT
# (at most SECONDS, default 5).
wait_port() {
    local tries=$((${2:-5} * 20))
    for _ in $(seq "$tries"); do
        (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}
