#!/usr/bin/env bash
# Installs the Debian packages LockProof needs that a new machine lacks. Idempotent: does nothing
# when everything is there. Needs root (CI and sessions run as root).
set -euo pipefail

missing=()
have_pkgconfig() { pkg-config --exists "$1" 2>/dev/null; }
have_pkgconfig libpq || missing+=(libpq-dev)
have_pkgconfig hiredis || missing+=(libhiredis-dev)
have_pkgconfig libmicrohttpd || missing+=(libmicrohttpd-dev)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v promtool >/dev/null || missing+=(prometheus)
[ -x "$(pg_config --bindir 2>/dev/null)/initdb" ] || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
    echo "install-deps: everything is installed"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
# The redis-server package starts a system Redis on 6379; LockProof runs its own on another port.
echo "install-deps: done"
