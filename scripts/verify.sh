#!/usr/bin/env bash
# make verify: release build, every scenario with its checkers and thresholds, the promtool
# checks, the monitoring loop end to end (scripts/check-monitoring.sh); prints the verdict table.
# Run inside scripts/with-services.sh (servers up).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
started=$(date +%s)
swift build -c release --product lockproof || exit 1
status=0
rm -rf .run/reports
.build/release/lockproof verify Scenarios --report-dir .run/reports || status=$?
scripts/check-dashboards.sh || { [ "$status" -ne 0 ] || status=1; }
LOCKPROOF_BINARY=.build/release/lockproof scripts/check-monitoring.sh || { [ "$status" -ne 0 ] || status=1; }
echo "verify: $(($(date +%s) - started)) s, reports in .run/reports, exit $status"
exit "$status"
