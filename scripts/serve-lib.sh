# Sourced (not run) by the scripts that start `lockproof serve --api-address` for a check or a
# benchmark (scripts/check-api.sh, scripts/bench-api.sh).
#   require_servers
# exits the calling script with 2 unless LOCKPROOF_DATABASE_URL and LOCKPROOF_REDIS_URL are set.
#   start_serve LOCKPROOF WORKDIR SERVE-ARGS...
# starts `LOCKPROOF serve SERVE-ARGS...` (stdout in WORKDIR/serve.out, stderr in WORKDIR/serve.log),
# stops it when the calling script exits, waits at most 60 s until it prints its `metrics:` line
# (both addresses listen), and sets serve_pid and serve_url (from its `api:` line). Exits the
# calling script with 1 when serve does not start.

require_servers() {
    if [ -z "${LOCKPROOF_DATABASE_URL:-}" ] || [ -z "${LOCKPROOF_REDIS_URL:-}" ]; then
        echo "$(basename "$0" .sh): LOCKPROOF_DATABASE_URL and LOCKPROOF_REDIS_URL are not set; run it as scripts/with-services.sh $0" >&2
        exit 2
    fi
}

start_serve() {
    local lockproof=$1 work=$2
    shift 2
    "$lockproof" serve "$@" >"$work/serve.out" 2>"$work/serve.log" &
    serve_pid=$!
    trap stop_serve EXIT
    for _ in $(seq 1 600); do
        grep -q '^metrics: ' "$work/serve.out" && break
        if ! kill -0 "$serve_pid" 2>/dev/null; then
            echo "$(basename "$0"): serve did not start:" >&2
            cat "$work/serve.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    serve_url=$(sed -n 's/^api: //p' "$work/serve.out")
    if [ -z "$serve_url" ]; then
        echo "$(basename "$0"): serve printed no api line within 60 s" >&2
        exit 1
    fi
}

stop_serve() {
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
}
