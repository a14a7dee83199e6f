#!/usr/bin/env bash
# Starts or stops the throwaway PostgreSQL and Redis that the tests and scenarios use.
#   scripts/services.sh start   # prints the export lines for LOCKPROOF_DATABASE_URL / LOCKPROOF_REDIS_URL
#   scripts/services.sh stop
#   scripts/services.sh env     # prints the export lines only
# Everything lives under .run/services-PGPORT-REDISPORT/ in the checkout (ignored by git): two sets on
# other ports in one checkout keep apart, and one's `stop` never stops the other's servers.
# PostgreSQL refuses to run as root, so as root its cluster runs as the `postgres` user.
# The export lines also say which servers these are (LOCKPROOF_MANAGED_*): the scenario runner
# injects server-level faults (Redis stopped, frozen or failed over; sessions terminated) only into
# servers named there. A failover scenario starts a replica on LOCKPROOF_REDIS_REPLICA_PORT
# (default 26380); `stop` stops it too.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
pg_port=${LOCKPROOF_PG_PORT:-25432}
redis_port=${LOCKPROOF_REDIS_PORT:-26379}
replica_port=${LOCKPROOF_REDIS_REPLICA_PORT:-26380}
run="$root/.run/services-$pg_port-$redis_port"
pg_bin=$(pg_config --bindir)
mkdir -p "$run"

# The data folder must be reachable by the postgres user; a checkout under a private folder is not.
pg_base() {
    if [ -f "$run/pg-base" ]; then cat "$run/pg-base"; return; fi
    local base="$run/pg"
    if [ "$(id -u)" -eq 0 ]; then
        mkdir -p "$base"
        chown postgres "$base"
        if ! runuser -u postgres -- test -w "$base" 2>/dev/null; then
            rm -rf "$base"
            base=$(mktemp -d /tmp/lockproof-pg.XXXXXX)
            chown postgres "$base"
        fi
    fi
    echo "$base" >"$run/pg-base"
    echo "$base"
}

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

print_env() {
    echo "export LOCKPROOF_DATABASE_URL=postgresql://lockproof@127.0.0.1:$pg_port/lockproof"
    echo "export LOCKPROOF_REDIS_URL=redis://127.0.0.1:$redis_port/0"
    echo "export LOCKPROOF_MANAGED_PG_PORT=$pg_port"
    echo "export LOCKPROOF_MANAGED_REDIS_PORT=$redis_port"
    echo "export LOCKPROOF_MANAGED_REDIS_CONF=$run/redis/redis.conf"
    echo "export LOCKPROOF_MANAGED_REDIS_PIDFILE=$run/redis/redis.pid"
    echo "export LOCKPROOF_MANAGED_REDIS_REPLICA_PORT=$replica_port"
}

start_pg() {
    local base; base=$(pg_base)
    local data="$base/data"
    if [ ! -f "$data/PG_VERSION" ]; then
        as_pg "$pg_bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --no-locale >"$run/initdb.log" 2>&1 \
            || { cat "$run/initdb.log" >&2; exit 1; }
    fi
    if ! as_pg "$pg_bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        mkdir -p "$base/socket"
        [ "$(id -u)" -eq 0 ] && chown postgres "$base/socket"
        as_pg "$pg_bin/pg_ctl" -D "$data" -l "$base/postgres.log" -w -t 60 start \
            -o "-p $pg_port -k $base/socket -c listen_addresses=127.0.0.1 -c max_connections=400 -c deadlock_timeout=100ms -c shared_buffers=128MB -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null \
            || { tail -20 "$base/postgres.log" >&2; exit 1; }
    fi
    local psql=("$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d postgres -Atq -v ON_ERROR_STOP=1)
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'lockproof'")" != 1 ]; then
        "${psql[@]}" -c "CREATE ROLE lockproof LOGIN SUPERUSER"
    fi
    if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'lockproof'")" != 1 ]; then
        "${psql[@]}" -c "CREATE DATABASE lockproof OWNER lockproof"
    fi
    # LockProof writes only into a database carrying its lockproof_schema marker; one an older build
    # created (its tables, no marker) is refused. These are this checkout's throwaway databases
    # (lockproof, and lockproof_tests the tests create): such a one is dropped and created again.
    local db
    for db in lockproof lockproof_tests; do
        [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$db'")" = 1 ] || continue
        local in_db=("$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -d "$db" -Atq -v ON_ERROR_STOP=1)
        if [ "$("${in_db[@]}" -c "SELECT to_regclass('public.users') IS NOT NULL AND to_regclass('public.lockproof_schema') IS NULL")" = t ]; then
            echo "services: database $db was created by an older LockProof (no lockproof_schema marker): creating it again" >&2
            "${psql[@]}" -c "DROP DATABASE $db WITH (FORCE)"
            "${psql[@]}" -c "CREATE DATABASE $db OWNER lockproof"
        fi
    done
}

stop_pg() {
    [ -f "$run/pg-base" ] || return 0
    local data; data="$(cat "$run/pg-base")/data"
    [ -d "$data" ] || return 0
    as_pg "$pg_bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

start_redis() {
    mkdir -p "$run/redis"
    if [ -f "$run/redis/redis.pid" ] && kill -0 "$(cat "$run/redis/redis.pid")" 2>/dev/null; then return 0; fi
    # A config file, so that a fault that stopped it can start the same server again.
    cat >"$run/redis/redis.conf" <<CONF
port $redis_port
bind 127.0.0.1
daemonize yes
dir $run/redis
pidfile $run/redis/redis.pid
logfile $run/redis/redis.log
save ""
appendonly no
maxclients 2000
CONF
    redis-server "$run/redis/redis.conf"
    for _ in $(seq 1 50); do
        redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "services: Redis did not answer on port $redis_port" >&2
    tail -20 "$run/redis/redis.log" >&2
    exit 1
}

stop_redis() {
    local pidfile
    for pidfile in "$run/redis/replica.pid" "$run/redis/redis.pid"; do
        [ -f "$pidfile" ] || continue
        local pid; pid=$(cat "$pidfile")
        kill -CONT "$pid" 2>/dev/null || true  # a frozen server cannot act on SIGTERM
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$pidfile"
    done
}

case "${1:-}" in
start) start_pg; start_redis; print_env ;;
stop) stop_redis; stop_pg; echo "services: stopped" >&2 ;;
env) print_env ;;
*) echo "usage: scripts/services.sh start|stop|env" >&2; exit 2 ;;
esac
