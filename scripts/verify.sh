#!/usr/bin/env bash
# make verify: release build, then the monitoring loop end to end (scripts/check-monitoring.sh) in
# the background, every scenario with its checkers and thresholds, the promtool checks, the
# reports against docs/schemas/, the black-box quick suites (scripts/blackbox-shop.sh,
# scripts/blackbox-serve.sh); prints the verdict table, the monitoring check's output, and the
# comparison with the previous run's reports (kept in .run/reports.previous). Run inside
# scripts/with-services.sh (servers up).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/background-job.sh
. scripts/background-job.sh
started=$(date +%s)
# Each stage prints its own time, so a slow verify says where the time went.
stage_started=$started
stage() { local now; now=$(date +%s); echo "verify: stage $1: $((now - stage_started)) s"; stage_started=$now; }
swift build -c release --product lockproof || exit 1
stage "release build"
built=$(date +%s)
status=0
# The monitoring check spends most of its 1.5 minutes waiting for Prometheus and Alertmanager to
# fire and resolve alerts. It runs first, in the background, and the scenarios start once it
# says (the idle file) that only those waits remain: its runs and its serve, on this PostgreSQL
# and Redis, have ended by then (two runs on one database or Redis refuse each other, README
# "Data safety"); what remains asks its own Prometheus, Alertmanager and receiver only, on its
# own ports. Its output is printed as one block at the end. check-monitoring bounds its test at
# 600 s; this bound catches a hang outside it.
monitoring_log="$root/.run/verify-monitoring.log"
monitoring_idle="$root/.run/verify-monitoring.idle"
monitoring_deadline=$(($(date +%s) + ${LOCKPROOF_MONITORING_BOUND:-660}))
mkdir -p .run
rm -f "$monitoring_idle"
trap bg_stop EXIT
bg_start "$monitoring_log" env LOCKPROOF_BINARY=.build/release/lockproof \
    LOCKPROOF_MONITORING_IDLE_FILE="$monitoring_idle" scripts/check-monitoring.sh
bg_wait_idle "$monitoring_idle" "$monitoring_deadline" || bg_finish check-monitoring "$monitoring_deadline"
stage "check-monitoring until only its alert waits remain (they overlap the scenarios)"
# The previous run's reports are kept as the baseline of `lockproof compare`, rotated only after a
# verify that ran (exit 0 or 1): a refused one (exit 2) leaves .run/reports and the baseline alone.
rm -rf .run/reports.next
.build/release/lockproof verify Scenarios --report-dir .run/reports.next || status=$?
reports=.run/reports
if [ "$status" -eq 2 ] && [ -d .run/reports ]; then
    reports=.run/reports.next
    echo "verify: refused (exit 2): its reports are in $reports; .run/reports and .run/reports.previous are kept"
else
    if [ -d .run/reports ]; then rm -rf .run/reports.previous && mv .run/reports .run/reports.previous; fi
    mv .run/reports.next .run/reports
fi
stage "scenarios"
scripts/check-dashboards.sh || { [ "$status" -ne 0 ] || status=1; }
stage "check-dashboards"
# The reports the run just wrote match their published layout (docs/schemas/).
python3 scripts/check_report_schemas.py "$reports" || { [ "$status" -ne 0 ] || status=1; }
stage "report schemas"
# Black-box (issue 18): the shop fixture through targets/shop.yaml, correct and with two bugs as
# negative controls (each must be caught by its checker); about 20 s.
scripts/blackbox-shop.sh --quick --lockproof .build/release/lockproof || { [ "$status" -ne 0 ] || status=1; }
stage "blackbox-shop"
scripts/blackbox-serve.sh --quick --lockproof .build/release/lockproof || { [ "$status" -ne 0 ] || status=1; }
stage "blackbox-serve"
monitoring_status=0
bg_finish check-monitoring "$monitoring_deadline" || monitoring_status=$?
stage "check-monitoring, waiting for its end"
echo "---- check-monitoring (ran in the background; its output) ----"
cat "$monitoring_log"
echo "---- end of check-monitoring: exit $monitoring_status ----"
[ "$monitoring_status" -eq 0 ] || [ "$status" -ne 0 ] || status=1
if [ "$reports" = .run/reports ] && [ -d .run/reports.previous ]; then
    # One run per scenario is noisy: the comparison is printed, never fails verify.
    echo "compared with the previous make verify (.run/reports.previous; informative, does not change the exit status):"
    .build/release/lockproof compare .run/reports.previous .run/reports || true
else
    echo "no previous reports to compare with: the next make verify compares against .run/reports"
fi
echo "verify: $(($(date +%s) - started)) s ($(($(date +%s) - built)) s after the release build), reports in $reports, exit $status"
exit "$status"
