#!/usr/bin/env bash
# make bench: release build, `lockproof bench --quick` with its reports in .run/bench, then the
# HTML report checked in headless Chromium (and the checker shown to catch an emptied plot).
# Run inside scripts/with-services.sh (servers up). Not part of make test / make verify.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
started=$(date +%s)
swift build -c release --product lockproof || exit 1
out=.run/bench
rm -rf "$out"
status=0
.build/release/lockproof bench --quick --report-dir "$out" ${LOCKPROOF_BENCH_ARGS:-} || status=$?
if [ -f "$out/bench.html" ]; then
    scripts/check-report-html.sh "$out/bench.html" "$out/bench.png" || { [ "$status" -ne 0 ] || status=1; }
    # Negative control: the same page with its plot data removed must fail the check.
    sed -e "s/ d='M[^']*'/ d=''/g" -e "s/<use [^>]*>//g" "$out/bench.html" >"$out/empty-plots.html"
    if scripts/check-report-html.sh "$out/empty-plots.html" "$out/empty-plots.png" >/dev/null 2>&1; then
        echo "FAIL the HTML check passed a page whose plots were emptied"
        [ "$status" -ne 0 ] || status=1
    else
        echo "ok   the HTML check rejects a page whose plots were emptied"
    fi
    rm -f "$out/empty-plots.html" "$out/empty-plots.png"
else
    echo "FAIL no bench.html was written"
    [ "$status" -ne 0 ] || status=1
fi
# report.html of run/verify: the negative controls' caught violations drawn as timelines.
.build/release/lockproof run Scenarios/*-naive.yaml --quiet --report-dir "$out/verify" >/dev/null || true
if [ -f "$out/verify/report.html" ]; then
    scripts/check-report-html.sh "$out/verify/report.html" "$out/verify/report.png" || { [ "$status" -ne 0 ] || status=1; }
else
    echo "FAIL verify wrote no report.html"
    [ "$status" -ne 0 ] || status=1
fi
echo "bench: $(($(date +%s) - started)) s, reports in $out, exit $status"
exit "$status"
