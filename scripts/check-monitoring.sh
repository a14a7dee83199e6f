#!/usr/bin/env bash
# The monitoring loop, proven end to end (make verify, make check-monitoring): the Alertmanager
# configuration, then scripts/monitoring_e2e.py: real
# Prometheus and Alertmanager with the shipped rules and scrape settings, a webhook receiver,
# `lockproof serve` and `lockproof run`; alerts fire, reach the receiver and resolve, a killed serve
# pages, every dashboard expression returns data. Report: .run/monitoring/monitoring-report.md.
# Needs PostgreSQL and Redis (run inside scripts/with-services.sh) and a lockproof binary
# (LOCKPROOF_BINARY, default .build/release/lockproof, built if missing). Ports: six from
# LOCKPROOF_MONITORING_PORT_BASE (default 29470). LOCKPROOF_MONITORING_IDLE_FILE: a file the test
# creates once only its last alert waits remain (make verify starts the scenarios then; see
# scripts/monitoring_e2e.py --idle-file).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
work="$root/.run/monitoring"
binary=${LOCKPROOF_BINARY:-.build/release/lockproof}

for tool in prometheus prometheus-alertmanager amtool python3; do
    command -v "$tool" >/dev/null || { echo "check-monitoring: $tool not found (scripts/install-deps.sh)" >&2; exit 2; }
done

# Whatever happens, nothing the end-to-end test started outlives it: it lists every pid it starts.
stop_started() {
    [ -f "$work/pids" ] || return 0
    while read -r pid; do
        kill "$pid" 2>/dev/null || true
    done <"$work/pids"
}
trap stop_started EXIT
# A TERM (make verify ending a check that hangs) reaches the test, which stops what it started:
# bash alone would die and leave it running.
test_pid=
stop_test() {
    if [ -n "$test_pid" ]; then kill -TERM "$test_pid" 2>/dev/null; wait "$test_pid"; fi
    exit 143
}
trap stop_test TERM INT

status=0
began=$(date +%s)
# The helpers' own tests (pytest) and the runbook links run in make test (check-scripts,
# check-dashboards); here the configuration and the loop itself.
amtool check-config Dashboards/alertmanager.yml >/dev/null && echo "ok   amtool check-config Dashboards/alertmanager.yml" \
    || { echo "FAIL amtool check-config Dashboards/alertmanager.yml"; status=1; }

if [ ! -x "$binary" ]; then
    swift build -c release --product lockproof || exit 1
fi
rm -rf "$work"
mkdir -p "$work"
idle=()
[ -z "${LOCKPROOF_MONITORING_IDLE_FILE:-}" ] || idle=(--idle-file "$LOCKPROOF_MONITORING_IDLE_FILE")
# Bounded as a whole too: every wait inside is bounded, this catches a hang between them. In the
# background with `wait`, which a TERM interrupts (a foreground command would delay the trap).
timeout -k 10s 600s python3 scripts/monitoring_e2e.py --lockproof "$binary" --workdir "$work" "${idle[@]}" &
test_pid=$!
wait "$test_pid" || status=1
test_pid=
echo "check-monitoring: $([ $status -eq 0 ] && echo passed || echo FAILED) in $(($(date +%s) - began)) s, report in $work/monitoring-report.md"
exit "$status"
