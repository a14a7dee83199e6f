#!/usr/bin/env bash
# Black-box verification through targets/lockproof-serve.yaml (issues 17 and 18): starts N
# `lockproof serve` instances (scripts/cluster.sh) on a database of their own, once per design,
# runs shipped scenarios through their HTTP API with `lockproof verify --target`, and checks:
#   - the seed's design passes every scenario, through one instance or several;
#   - each broken design (`--strategy case=negative-control`) is caught by the checker of the
#     invariant it breaks (read from the scenario's JSON report). A serve instance runs one design
#     whatever strategy a scenario names, so a control is a seed scenario against a broken serve.
# With --compare, each scenario of the seed row also runs in process, and the table shows both.
# Usage: scripts/blackbox-serve.sh [--quick] [--instances N] [--compare] [--lockproof PATH] [--client-engine events|threads]
#   --client-engine: the engine of the target runs (lockproof verify --client-engine; events by default).
#   --quick: the short suite `make verify` runs (2 instances, three cases, one redis-down fault and two controls).
# Both suites send idempotency keys through the API (charge-balance-optimistic-retry-keys: 4 racing
# duplicates per key; serve's seed design must apply each once): a serve that loses the
# Idempotency-Key header on its way to the charge applies every duplicate (issue 21, mutant 68).
# Fault scenarios run through the target too: the redis-down one passes with the seed's design and
# catches the Redis-lock-only design (`charge-balance=redis-lock`: no database lock to fall back on).
# Needs the servers of scripts/services.sh (LOCKPROOF_DATABASE_URL, LOCKPROOF_REDIS_URL).
# Ports: SERVE_PORT (default 28700) and up for the API, +100 for /metrics.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0 instances=1 compare=0 engine=events
lockproof=.build/debug/lockproof
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1; instances=2 ;;
    --instances) instances="$2"; shift ;;
    --compare) compare=1 ;;
    --lockproof) lockproof="$2"; shift ;;
    --client-engine) engine="$2"; shift ;;
    *) echo "blackbox-serve: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
[[ "$instances" =~ ^[1-9][0-9]?$ ]] || { echo "blackbox-serve: --instances: expected 1 to 99, got '$instances'" >&2; exit 2; }
: "${LOCKPROOF_DATABASE_URL:?blackbox-serve: LOCKPROOF_DATABASE_URL is not set (eval \"\$(scripts/services.sh start)\")}"
port="${SERVE_PORT:-28700}"
database="${SERVE_DATABASE:-lockproof_serve_target}"
serve_db_url="${LOCKPROOF_DATABASE_URL%/*}/$database"
psql "$LOCKPROOF_DATABASE_URL" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1 \
  || psql "$LOCKPROOF_DATABASE_URL" -qc "CREATE DATABASE $database"
export LOCKPROOF_SERVE_DATABASE_URL="$serve_db_url"
urls=""
for k in $(seq 0 $((instances - 1))); do urls="$urls http://127.0.0.1:$((port + k))"; done
export LOCKPROOF_SERVE_URLS="${urls# }"

# design (serve's --strategy; seed: its default) | scenarios | the checker that must catch it (empty: must pass)
if [ "$quick" = 1 ]; then
  matrix="seed|charge-balance-seed charge-balance-optimistic-retry-keys issue-coupon-seed daily-spend-seed fault-redis-down-charge-pay-seed|
charge-balance=naive|charge-balance-seed|money-conservation
daily-spend=repeatable-read-no-lock|daily-spend-seed|daily-limit"
else
  matrix="seed|charge-balance-seed charge-balance-optimistic-retry-keys issue-coupon-seed fault-redis-down-charge-pay-seed issue-coupon-peer-200-for-100 issue-coupon-peer-same-user create-order-seed order-state-seed order-state-race-complete-cancel cart-quantity-seed daily-spend-seed mixed-charge-pay-seed|
charge-balance=naive|charge-balance-seed|money-conservation
charge-balance=redis-lock|fault-redis-down-charge-pay-seed|money-conservation
issue-coupon=off-by-one|issue-coupon-peer-200-for-100|coupon-quantity
order-state=naive|order-state-race-complete-cancel|single-winner
daily-spend=repeatable-read-no-lock|daily-spend-seed|daily-limit"
fi

# A broken design runs with a read-to-write window: in process a scenario's think_ms is that window
# (`processingDelaySeconds`); through a target think_ms is ignored and serve's own is 0, so a race
# the in-process control meets every run depended, through HTTP, on two requests arriving within
# the same millisecond: on a loaded machine across 4 instances, order-state=naive escaped once in
# 3 runs (its 50 complete/cancel pairs are one shot each). 20 ms covers the arrival jitter; the
# seed's design runs without it (its verdict is the one that must hold at full speed).
control_delay="${BLACKBOX_CONTROL_DELAY:-0.02}"

reports=$(mktemp -d)
# The cluster's run folder is also what the instance faults may strike (scripts/cluster.sh prints it).
export LOCKPROOF_CLUSTER_DIR="$reports/cluster" LOCKPROOF_MANAGED_CLUSTER_DIR="$reports/cluster" LOCKPROOF_BIN="$lockproof"
stop_cluster() { scripts/cluster.sh stop >/dev/null 2>&1 || true; }
trap 'stop_cluster; rm -rf "$reports"' EXIT

# One scenario's report as "status caught-checkers violation-names".
summary() {
  python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
want = sys.argv[2]
assert want == "" or r.get("target") == want, "the report names no target"
caught = [c["name"] for c in r["checks"] if not c["passed"]]
names = ";".join("%sx%d" % (v["name"], v.get("count", 1)) for c in r["checks"] for v in c["violations"])
print(r["status"], ",".join(caught) or "-", names or "-")' "$1" "$2"
}

failures=0
table="design|instances|scenario|expected|verdict|caught by|violations"
[ "$compare" = 1 ] && table="$table|in process"
while IFS='|' read -r design names checker; do
  [ -n "$design" ] || continue
  serve_args=()
  [ "$design" = seed ] || serve_args=(--strategy "$design" --processing-delay "$control_delay")
  LOCKPROOF_DATABASE_URL="$serve_db_url" scripts/cluster.sh start "$instances" "$port" -- "${serve_args[@]}" >"$reports/cluster-$design.log" 2>&1 \
    || { cat "$reports/cluster-$design.log" >&2; exit 1; }
  files=()
  for name in $names; do files+=("Scenarios/$name.yaml"); done
  set +e
  timeout -k 5s 300s "$lockproof" verify --quiet --client-engine "$engine" --target targets/lockproof-serve.yaml --report-dir "$reports/$design" "${files[@]}" \
    >"$reports/$design.out" 2>&1
  status=$?
  set -e
  stop_cluster
  if [ "$compare" = 1 ] && [ "$design" = seed ]; then
    "$lockproof" verify --quiet --report-dir "$reports/in-process" "${files[@]}" >"$reports/in-process.out" 2>&1 || true
  fi
  for name in $names; do
    json="$reports/$design/$name.json"
    if [ ! -f "$json" ]; then
      echo "blackbox-serve: $design/$name wrote no report (exit $status):" >&2
      tail -20 "$reports/$design.out" >&2
      failures=$((failures + 1))
      continue
    fi
    read -r verdict caught violations < <(summary "$json" lockproof-serve)
    if [ -z "$checker" ]; then
      expected="pass"
      [ "$verdict" = pass ] || { failures=$((failures + 1)); echo "blackbox-serve: $design $name: expected pass, got $verdict ($caught)" >&2; }
    else
      expected="fail by $checker"
      case ",$caught," in
        *",$checker,"*) [ "$verdict" = fail ] || failures=$((failures + 1)) ;;
        *) failures=$((failures + 1)); echo "blackbox-serve: $design $name: expected $checker to catch it, got $verdict ($caught)" >&2 ;;
      esac
    fi
    row="$design|$instances|$name|$expected|$verdict|$caught|$violations"
    if [ "$compare" = 1 ]; then
      if [ "$design" = seed ] && [ -f "$reports/in-process/$name.json" ]; then
        read -r in_verdict _ _ < <(summary "$reports/in-process/$name.json" "")
        row="$row|$in_verdict"
      else
        row="$row|-"
      fi
    fi
    table="$table
$row"
  done
done <<<"$matrix"

echo "$table" | column -t -s '|'
for dir in "$reports"/*/; do
  [ "$(basename "$dir")" = cluster ] && continue
  python3 scripts/check_report_schemas.py "$dir" >/dev/null || { failures=$((failures + 1)); python3 scripts/check_report_schemas.py "$dir" >&2; }
done
if [ "$failures" -gt 0 ]; then
  echo "blackbox-serve: $failures unexpected verdicts" >&2
  exit 1
fi
echo "blackbox-serve: every verdict as expected"
