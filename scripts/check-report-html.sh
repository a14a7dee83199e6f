#!/usr/bin/env bash
# Checks a LockProof HTML report (bench.html, or verify's report.html) in a real headless browser:
#   scripts/check-report-html.sh PAGE.html [SCREENSHOT.png]
# 1. Chromium loads the page and runs the page's own check after layout: every figure must hold an
#    SVG of real size with something drawn in it (bench.html: data lines or points beyond the
#    legend; report.html: operations on every anomaly's timeline, and a page without anomalies has
#    no timeline to check). The page writes the outcome to <body data-plot-check="ok N" | "fail: …">,
#    read here from the DOM.
# 2. Chromium takes a full screenshot; it must not be blank (mostly one colour:
#    scripts/check_screenshot.py).
# Exits 1 when a plot is missing or empty or the screenshot is blank, 2 when Chromium is missing.
set -euo pipefail
page=${1:?usage: check-report-html.sh PAGE.html [SCREENSHOT.png]}
[ -f "$page" ] || { echo "check-report-html: $page: no such file" >&2; exit 1; }
abs=$(cd "$(dirname "$page")" && pwd)/$(basename "$page")
shot=${2:-${abs%.html}.png}
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "check-report-html: chromium not found (scripts/install-deps.sh bench installs it)" >&2; exit 2; }
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run --disable-dev-shm-usage
       --virtual-time-budget=10000 --user-data-dir="$(mktemp -d)")

dom=$(timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$abs" 2>/dev/null || true)
verdict=$(printf '%s' "$dom" | grep -o 'data-plot-check="[^"]*"' | head -1 | sed 's/^data-plot-check="//; s/"$//')
if [ -z "$verdict" ]; then
    echo "FAIL $page: the page's plot check did not run in Chromium (no data-plot-check on <body>)"
    exit 1
fi
case "$verdict" in
    ok*) echo "ok   $page: plots drawn ($verdict)" ;;
    *) echo "FAIL $page: $verdict"; exit 1 ;;
esac

# Tall enough for the first sections (Chromium clips to the window); half scale keeps the pixel
# check below quick.
height=$(( $(printf '%s' "$dom" | { grep -o '<figure' || true; } | wc -l) * 220 + 1500 ))
[ "$height" -le 6000 ] || height=6000
timeout 120 "$browser" "${flags[@]}" --force-device-scale-factor=0.5 --window-size=1400,"$height" \
    --screenshot="$shot" "file://$abs" >/dev/null 2>&1 || true
[ -s "$shot" ] || { echo "FAIL $page: Chromium wrote no screenshot"; exit 1; }
python3 "$(dirname "$0")/check_screenshot.py" "$shot"
echo "ok   screenshot $shot"
