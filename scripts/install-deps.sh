#!/usr/bin/env bash
# Installs the Debian packages LockProof needs that a new machine lacks, then the Python tools of
# scripts/requirements-dev.txt (pytest, ruff, jsonschema, PyYAML, schemathesis, psycopg[binary] for the shop
# fixture) with pip. Idempotent: does nothing when everything is there. Needs root for apt-get (CI and sessions run as root).
#   scripts/install-deps.sh         what make test and make verify need
#   scripts/install-deps.sh bench   also what make bench needs (gnuplot for the plots, Chromium to
#                                   check the HTML report) and wrk for scripts/bench-api.sh
set -euo pipefail

# Several checkouts may run this at once (helpers, CI steps): apt-get and pip do not wait for each
# other's locks, so one runs at a time and the others then find everything installed.
exec 9>/tmp/lockproof-install-deps.lock
flock -w 900 9 || { echo "install-deps: another install held /tmp/lockproof-install-deps.lock for 15 minutes" >&2; exit 1; }

missing=()
have_pkgconfig() { pkg-config --exists "$1" 2>/dev/null; }
have_pkgconfig libpq || missing+=(libpq-dev)
have_pkgconfig hiredis || missing+=(libhiredis-dev)
have_pkgconfig libmicrohttpd || missing+=(libmicrohttpd-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v promtool >/dev/null || missing+=(prometheus)
# scripts/check-api.sh seeds the API's test data with psql.
command -v psql >/dev/null || missing+=(postgresql-client)
# The monitoring end-to-end test (scripts/check-monitoring.sh): Alertmanager, and Python with
# PyYAML and pytest for its helpers (Debian's packages, for whichever python3 is first on PATH).
command -v prometheus-alertmanager >/dev/null || missing+=(prometheus-alertmanager)
command -v python3 >/dev/null || missing+=(python3)
python3 -c 'import yaml' 2>/dev/null || missing+=(python3-yaml)
python3 -m pytest --version >/dev/null 2>&1 || missing+=(python3-pytest)
[ -x "$(pg_config --bindir 2>/dev/null)/initdb" ] || missing+=(postgresql)
# pgbench ships with PostgreSQL, redis-benchmark with Redis (redis-tools): the benchmark's baselines.
command -v redis-benchmark >/dev/null || missing+=(redis-tools)
# CI's machine has pyenv's Python 3.11 with pip; a bare Debian gets Debian's.
if ! command -v python3 >/dev/null; then
    missing+=(python3 python3-pip)
elif ! python3 -m pip --version >/dev/null 2>&1; then
    missing+=(python3-pip)
fi
if [ "${1:-}" = bench ]; then
    command -v gnuplot >/dev/null || missing+=(gnuplot-nox)
    command -v chromium >/dev/null || missing+=(chromium)
    # scripts/bench-api.sh: the API-over-core ratio, HTTP load from wrk.
    command -v wrk >/dev/null || missing+=(wrk)
fi

if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: missing ${missing[*]}; run as root or install them with apt-get" >&2
        exit 1
    fi
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    # The redis-server package starts a system Redis on 6379; LockProof runs its own on another port.
fi

# The installed version of each pinned package, as pip recorded it (empty when missing).
requirements=$(dirname "$0")/requirements-dev.txt
python_missing=()
while IFS= read -r requirement; do
    name=${requirement%%==*} version=${requirement#*==}
    [ "$(python3 -c 'import importlib.metadata, sys; print(importlib.metadata.version(sys.argv[1]))' "$name" 2>/dev/null)" = "$version" ] ||
        python_missing+=("$requirement")
done < <(grep -E '^[A-Za-z]' "$requirements")
if [ ${#python_missing[@]} -gt 0 ]; then
    echo "install-deps: pip installing ${python_missing[*]}"
    # Debian's own Python refuses pip outside a venv (PEP 668); pyenv's Python ignores this.
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --disable-pip-version-check \
        --root-user-action=ignore "${python_missing[@]}"
fi

if [ ${#missing[@]} -eq 0 ] && [ ${#python_missing[@]} -eq 0 ]; then
    echo "install-deps: everything is installed"
else
    echo "install-deps: done"
fi
