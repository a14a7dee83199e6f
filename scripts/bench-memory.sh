#!/usr/bin/env bash
# Memory of a long run (a benchmark, not a test): 64 virtual users at full speed (no think time)
# on charge-balance for DURATION, history streamed to a report folder; samples the process's RSS
# every 10 s and prints it at 1 minute and at the end. Run inside scripts/with-services.sh, or with
# LOCKPROOF_DATABASE_URL / LOCKPROOF_REDIS_URL set.
#   scripts/bench-memory.sh [DURATION (default 30m)] [OUT folder (default .run/bench-memory)]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
duration=${1:-30m}
out=${2:-.run/bench-memory}
binary=${LOCKPROOF_BINARY:-.build/release/lockproof}
[ -x "$binary" ] || swift build -c release --product lockproof
rm -rf "$out"
mkdir -p "$out"
cat >"$out/memory-64vu.yaml" <<YAML
name: memory-64vu
description: 64 clients charging at full speed for $duration; memory must stay flat.
case: charge-balance
strategy: atomic
seed: {users: 1000, balance: 0}
workload: {virtual_users: 64, duration: $duration, pick: random, amount: 1, timeout: 10m}
YAML
"$binary" run "$out/memory-64vu.yaml" --report-dir "$out/reports" --quiet >"$out/run.txt" 2>&1 &
pid=$!
started=$(date +%s)
echo "seconds rss_kib history_bytes" >"$out/rss.txt"
while kill -0 "$pid" 2>/dev/null; do
    rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
    size=$(stat -c %s "$out/reports/memory-64vu.history.jsonl" 2>/dev/null || echo 0)
    [ -n "$rss" ] && echo "$(($(date +%s) - started)) $rss $size" >>"$out/rss.txt"
    sleep 10
done
wait "$pid" || true
echo "RSS (KiB) over time, history file size: $out/rss.txt"
awk 'NR > 1 && $1 >= 60 && !one { print "at " $1 " s: RSS " $2 " KiB, history " $3 " bytes"; one = 1 } END { print "at " $1 " s: RSS " $2 " KiB, history " $3 " bytes" }' "$out/rss.txt"
grep -E "^operations|^throughput|^verdict" "$out/run.txt" || cat "$out/run.txt"
