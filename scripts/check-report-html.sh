#!/usr/bin/env bash
# Checks a LockProof HTML report (bench.html, or verify's report.html) in a real headless browser:
#   scripts/check-report-html.sh PAGE.html [SCREENSHOT.png]
# 1. Chromium loads the page and runs the page's own check after layout: every figure must hold an
#    SVG of real size with something drawn in it (data lines or points beyond the legend). The page
#    writes the outcome to <body data-plot-check="ok N" | "fail: …">, read here from the DOM.
# 2. Chromium takes a full screenshot; it must not be blank (mostly one colour).
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
height=$(( $(printf '%s' "$dom" | grep -o '<figure' | wc -l) * 220 + 1500 ))
[ "$height" -le 6000 ] || height=6000
timeout 120 "$browser" "${flags[@]}" --force-device-scale-factor=0.5 --window-size=1400,"$height" \
    --screenshot="$shot" "file://$abs" >/dev/null 2>&1 || true
[ -s "$shot" ] || { echo "FAIL $page: Chromium wrote no screenshot"; exit 1; }
python3 - "$shot" <<'PY'
# Decodes the PNG (8-bit RGB or RGBA, the format Chromium writes) with zlib alone and measures how
# much of it is not background: a blank or failed render is one colour.
import struct, sys, zlib
path = sys.argv[1]
data = open(path, "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
pos, idat, width = 8, b"", 0
while pos < len(data):
    length, kind = struct.unpack(">I4s", data[pos:pos + 8])
    chunk = data[pos + 8:pos + 8 + length]
    if kind == b"IHDR":
        width, height, depth, colour = struct.unpack(">IIBB", chunk[:10])
        assert depth == 8 and colour in (2, 6), f"unexpected PNG format depth={depth} colour={colour}"
        channels = 3 if colour == 2 else 4
    elif kind == b"IDAT":
        idat += chunk
    pos += 12 + length
raw = zlib.decompress(idat)
stride = width * channels
previous = bytearray(stride)
counts = {}
offset = 0
for row in range(height):
    kind = raw[offset]; line = bytearray(raw[offset + 1:offset + 1 + stride]); offset += 1 + stride
    for i in range(stride):
        left = line[i - channels] if i >= channels else 0
        up = previous[i]; upleft = previous[i - channels] if i >= channels else 0
        if kind == 1: line[i] = (line[i] + left) & 255
        elif kind == 2: line[i] = (line[i] + up) & 255
        elif kind == 3: line[i] = (line[i] + (left + up) // 2) & 255
        elif kind == 4:
            p = left + up - upleft; pa, pb, pc = abs(p - left), abs(p - up), abs(p - upleft)
            line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else upleft)) & 255
    previous = line
    if row % 4 == 0:
        for i in range(0, stride, channels * 4):
            pixel = bytes(line[i:i + 3]); counts[pixel] = counts.get(pixel, 0) + 1
total = sum(counts.values())
background = max(counts.values())
drawn = 1 - background / total
print(f"     screenshot {path}: {width}x{height}, {drawn:.1%} of it drawn, {len(counts)} colours")
if drawn < 0.01 or len(counts) < 4:
    print("FAIL the screenshot is blank"); sys.exit(1)
PY
echo "ok   screenshot $shot"
