#!/usr/bin/env bash
# Runs a command with PostgreSQL and Redis available: the servers named by LOCKPROOF_DATABASE_URL
# and LOCKPROOF_REDIS_URL when both are set, otherwise throwaway ones started here and stopped
# afterwards, even when the command fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${LOCKPROOF_DATABASE_URL:-}" ] && [ -n "${LOCKPROOF_REDIS_URL:-}" ]; then
    exec "$@"
fi
trap '"$root/scripts/services.sh" stop' EXIT
# A failed start must stop here: `eval "$(…)"` alone would swallow the failure, and the command
# would then run against whatever answers on the default ports, someone else's servers perhaps.
exports=$("$root/scripts/services.sh" start) || { echo "with-services: the throwaway servers did not start; nothing was run" >&2; exit 1; }
eval "$exports"
[ -n "${LOCKPROOF_DATABASE_URL:-}" ] && [ -n "${LOCKPROOF_REDIS_URL:-}" ] || { echo "with-services: services.sh start named no servers; nothing was run" >&2; exit 1; }
echo "with-services: PostgreSQL on 127.0.0.1:${LOCKPROOF_PG_PORT:-25432}, Redis on 127.0.0.1:${LOCKPROOF_REDIS_PORT:-26379}"
"$@"
