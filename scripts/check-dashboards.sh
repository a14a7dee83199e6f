#!/usr/bin/env bash
# Checks the operator-facing files: Prometheus config, alert rules and their unit
# tests (promtool), then the Grafana dashboard, the metric catalog and the runbook anchors
# (scripts/check_dashboards.py).
#   bash scripts/check-dashboards.sh [ROOT]  (from anywhere; ROOT holds Dashboards/ and docs/,
#                                             default the repository; the tests pass fixtures)
# Prints one line per check; exits 1 if any check fails, 2 if promtool/python3 is missing.
set -euo pipefail

scripts=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "${1:-$scripts/..}"

for tool in promtool python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "FAIL $tool not found (promtool: apt-get install -y prometheus)" >&2
    exit 2
  fi
done

failed=0
run() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "ok   $name"
  else
    echo "FAIL $name"
    printf '%s\n' "$out" | sed 's/^/     /'
    failed=1
  fi
}

run "promtool check config Dashboards/prometheus.yml" promtool check config Dashboards/prometheus.yml
run "promtool check rules Dashboards/alerts.yml" promtool check rules Dashboards/alerts.yml
run "promtool test rules Dashboards/alerts_test.yml" promtool test rules Dashboards/alerts_test.yml

python3 "$scripts/check_dashboards.py" --root . || failed=1
# Every alert's link is the runbook_base_url template ending in its own <a id> (stricter than the
# anchor check above, which also takes a heading's anchor).
python3 "$scripts/runbook_links.py" Dashboards/alerts.yml docs/RUNBOOK.md || failed=1

if [ "$failed" -ne 0 ]; then
  echo "check-dashboards: FAILED"
  exit 1
fi
echo "check-dashboards: all checks passed"
