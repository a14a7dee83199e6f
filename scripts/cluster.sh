#!/usr/bin/env bash
# Starts or stops N `lockproof serve` instances against the same PostgreSQL and Redis (the ones
# LOCKPROOF_DATABASE_URL / LOCKPROOF_REDIS_URL name, e.g. after `eval "$(scripts/services.sh start)"`),
# each with its own pools, API port and /metrics port: the "several instances" of issue 17.
#
#   scripts/cluster.sh start N BASEPORT [-- SERVE OPTIONS...]   # prints export lines (eval them)
#   scripts/cluster.sh stop
#   scripts/cluster.sh status
#   scripts/cluster.sh restart K     # instance K (1..N) again, as it was first started
#
# Instance K (1..N) serves its API on 127.0.0.1:BASEPORT+K-1 and /metrics on 127.0.0.1:BASEPORT+100+K-1
# (so N <= 100). SERVE OPTIONS go to every instance (e.g. `-- --strategy charge-balance=redis-lock
# --workers 64 --connections 10 --recover-interval 1`).
#
# The run folder (LOCKPROOF_CLUSTER_DIR, default .run/cluster in the checkout, ignored by git) is
# this script's own: `instances` (K, API port, metrics port per line), instance-K.pid, instance-K.log,
# instance-K.sh (starts instance K again: the instance-kill fault runs it to restart what it killed)
# and targets.yml (Prometheus file_sd, see Dashboards/prometheus.yml, job lockproof).
# `start` waits until every instance answers /healthz and its API port (60 s each) and prints
# `export LOCKPROOF_MANAGED_CLUSTER_DIR=...`: the instance-kill and instance-pause faults strike only
# instances listed there, whose pid is a `lockproof` listening on the recorded API port.
# A shell script rather than a `lockproof cluster` command: it is process supervision (start in the
# background, pid files, signals), which services.sh already does this way for PostgreSQL and
# Redis, and it needs no Swift code that would only wrap posix_spawn and kill.
# Exit status: 0 done, 1 an instance did not start or stop, 2 bad arguments.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${LOCKPROOF_CLUSTER_DIR:-$root/.run/cluster}
bin=${LOCKPROOF_BIN:-$root/.build/debug/lockproof}

usage() {
    echo "usage: scripts/cluster.sh start N BASEPORT [-- SERVE OPTIONS...] | stop | status | restart K" >&2
    exit 2
}

is_number() { [[ "$1" =~ ^[0-9]+$ ]]; }

# Is $1 a running lockproof (not a recycled pid of another program)?
is_lockproof() {
    local pid=$1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = lockproof ]
}

pid_of() { cat "$dir/instance-$1.pid" 2>/dev/null || true; }

# Waits until instance K answers /healthz and its API port answers HTTP at all (60 s).
wait_ready() {
    local k=$1 api=$2 metrics=$3
    for _ in $(seq 1 600); do
        if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$metrics/healthz" \
            && curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$api/users/0"; then
            return 0
        fi
        if ! is_lockproof "$(pid_of "$k")"; then
            echo "cluster: instance $k exited while starting; the end of $dir/instance-$k.log:" >&2
            tail -n 5 "$dir/instance-$k.log" >&2 || true
            return 1
        fi
        sleep 0.1
    done
    echo "cluster: instance $k (API port $api, metrics port $metrics) did not answer within 60 s" >&2
    return 1
}

start_instance() {
    local k=$1
    read -r _ api metrics < <(awk -v k="$k" '$1 == k' "$dir/instances") || true
    [ -n "${api:-}" ] || { echo "cluster: no instance $k in $dir/instances" >&2; exit 2; }
    if is_lockproof "$(pid_of "$k")"; then
        echo "cluster: instance $k is running (pid $(pid_of "$k")); not starting a second one" >&2
        exit 1
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$api") 2>/dev/null; then
        echo "cluster: port $api is in use by a process this script did not start" >&2
        exit 1
    fi
    bash "$dir/instance-$k.sh"
    wait_ready "$k" "$api" "$metrics"
}

stop_instance() {
    local k=$1 pid
    pid=$(pid_of "$k")
    [ -n "$pid" ] || return 0
    if is_lockproof "$pid"; then
        kill -CONT "$pid" 2>/dev/null || true # a paused instance cannot act on SIGTERM
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do is_lockproof "$pid" || break; sleep 0.1; done
        if is_lockproof "$pid"; then
            echo "cluster: instance $k (pid $pid) ignored SIGTERM for 10 s; SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$dir/instance-$k.pid"
}

print_env() { echo "export LOCKPROOF_MANAGED_CLUSTER_DIR=$dir"; }

case "${1:-}" in
start)
    [ $# -ge 3 ] || usage
    n=$2 base=$3
    shift 3
    if [ $# -gt 0 ]; then [ "$1" = "--" ] || usage; shift; fi
    is_number "$n" && [ "$n" -ge 1 ] && [ "$n" -le 100 ] || { echo "cluster: N: '$n' is not 1 to 100" >&2; exit 2; }
    is_number "$base" && [ "$base" -ge 1024 ] && [ $((base + 199)) -le 65535 ] \
        || { echo "cluster: BASEPORT: '$base' is not 1024 to 65336" >&2; exit 2; }
    [ -x "$bin" ] || { echo "cluster: $bin is not built (swift build, or set LOCKPROOF_BIN)" >&2; exit 2; }
    [ -n "${LOCKPROOF_DATABASE_URL:-}" ] && [ -n "${LOCKPROOF_REDIS_URL:-}" ] \
        || { echo "cluster: LOCKPROOF_DATABASE_URL and LOCKPROOF_REDIS_URL must name the servers (scripts/services.sh start)" >&2; exit 2; }
    if [ -f "$dir/instances" ]; then
        while read -r k _; do
            if is_lockproof "$(pid_of "$k")"; then echo "cluster: $dir already runs instance $k; stop it first" >&2; exit 1; fi
        done <"$dir/instances"
    fi
    mkdir -p "$dir"
    chmod 700 "$dir" # the start scripts carry the servers' URLs
    rm -f "$dir"/instance-*.pid "$dir"/instance-*.sh
    : >"$dir/instances"
    {
        echo "# written by scripts/cluster.sh: one target per serve instance (Dashboards/prometheus.yml, job lockproof)"
        echo "- targets:"
        for k in $(seq 1 "$n"); do echo "    - 127.0.0.1:$((base + 100 + k - 1))"; done
        echo "  labels:"
        echo "    deployment: cluster"
    } >"$dir/targets.yml"
    env_lines=$(env | grep -E '^LOCKPROOF_[A-Z_]+=' | grep -v '^LOCKPROOF_MANAGED_CLUSTER_DIR=' | sort | while IFS='=' read -r name value; do
        printf 'export %s=%q\n' "$name" "$value"
    done)
    for k in $(seq 1 "$n"); do
        api=$((base + k - 1)) metrics=$((base + 100 + k - 1))
        echo "$k $api $metrics" >>"$dir/instances"
        args=$(printf ' %q' serve --api-address "127.0.0.1:$api" --metrics-address "127.0.0.1:$metrics" "$@")
        cat >"$dir/instance-$k.sh" <<EOF
#!/usr/bin/env bash
# written by scripts/cluster.sh: starts instance $k in the background, as it was first started
$env_lines
# The instance outlives its starter: it keeps none of the starter's descriptors but its log (a
# caller waiting for the end of a pipe it inherited would wait for the instance's end).
for fd in /proc/\$\$/fd/*; do n=\${fd##*/}; [ "\$n" -gt 2 ] 2>/dev/null && eval "exec \$n>&-"; done
nohup $(printf '%q' "$bin")$args >>$(printf '%q' "$dir/instance-$k.log") 2>&1 </dev/null &
echo \$! >$(printf '%q' "$dir/instance-$k.pid")
EOF
        chmod 700 "$dir/instance-$k.sh"
    done
    for k in $(seq 1 "$n"); do
        if ! start_instance "$k"; then
            for j in $(seq 1 "$n"); do stop_instance "$j"; done
            exit 1
        fi
        echo "cluster: instance $k pid $(pid_of "$k") api http://127.0.0.1:$((base + k - 1)) metrics http://127.0.0.1:$((base + 100 + k - 1))/metrics" >&2
    done
    print_env
    ;;
restart)
    [ $# -eq 2 ] && is_number "$2" || usage
    [ -f "$dir/instances" ] || { echo "cluster: $dir has no instances" >&2; exit 1; }
    start_instance "$2"
    ;;
stop)
    [ -f "$dir/instances" ] || exit 0
    while read -r k _; do stop_instance "$k"; done <"$dir/instances"
    ;;
status)
    [ -f "$dir/instances" ] || { echo "cluster: no instances in $dir"; exit 0; }
    while read -r k api metrics; do
        pid=$(pid_of "$k")
        if is_lockproof "$pid"; then state="running (pid $pid)"; else state="stopped"; fi
        echo "instance $k api 127.0.0.1:$api metrics 127.0.0.1:$metrics $state"
    done <"$dir/instances"
    ;;
env) print_env ;;
*) usage ;;
esac
