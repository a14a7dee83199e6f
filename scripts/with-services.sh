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
eval "$("$root/scripts/services.sh" start)"
echo "with-services: PostgreSQL on 127.0.0.1:${LOCKPROOF_PG_PORT:-25432}, Redis on 127.0.0.1:${LOCKPROOF_REDIS_PORT:-26379}"
"$@"
