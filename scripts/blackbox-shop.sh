#!/usr/bin/env bash
# Black-box verification through targets/shop.yaml (issue 18): starts the shop fixture
# (Tests/Fixtures/shop/shop.py) once per build — correct, then each bug switch given — on
# SHOP_PORT, runs the scenarios through it with `lockproof verify --target`, and checks:
#   - the correct build passes every scenario;
#   - each bug build is a negative control: its scenario must FAIL, and the checker named for the
#     bug must be the one that caught it (read from the scenario's JSON report).
# Usage: scripts/blackbox-shop.sh [--quick] [--lockproof PATH]
#   --quick: the short suite `make verify` runs (correct build + charge-no-lock + coupon-no-unique).
# Needs the servers of scripts/services.sh (LOCKPROOF_DATABASE_URL) and python3 with psycopg.
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
lockproof=.build/debug/lockproof
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --lockproof) lockproof="$2"; shift ;;
    *) echo "blackbox-shop: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done
: "${LOCKPROOF_DATABASE_URL:?blackbox-shop: LOCKPROOF_DATABASE_URL is not set (eval \"\$(scripts/services.sh start)\")}"
port="${SHOP_PORT:-28510}"
database="${SHOP_DATABASE:-lockproof_shop_fixture}"
shop_db_url="${LOCKPROOF_DATABASE_URL%/*}/$database"
psql "$LOCKPROOF_DATABASE_URL" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1 \
  || psql "$LOCKPROOF_DATABASE_URL" -qc "CREATE DATABASE $database"
export SHOP_URL="http://127.0.0.1:$port" SHOP_DATABASE_URL="$shop_db_url"

scenarios_dir=Tests/Fixtures/shop/scenarios
# build | scenarios | the checker that must catch it (empty: must pass) | shop's --think-ms (default 2:
# the pause between a read and the write that depends on it, widening the race windows)
if [ "$quick" = 1 ]; then
  matrix="none|shop-charge shop-coupon shop-cart|
charge-no-lock|shop-charge|money-conservation
coupon-no-unique|shop-coupon|coupon-quantity|20"
else
  matrix="none|charge-balance-seed issue-coupon-seed create-order-seed order-state-seed cart-quantity-seed shop-charge shop-coupon shop-cart shop-pay shop-orders shop-state|
charge-no-lock|shop-charge|money-conservation
coupon-no-unique|shop-coupon|coupon-quantity|20
payment-no-status-guard|shop-pay|money-conservation
order-locks-unsorted|shop-orders|no-deadlock
state-no-guard|shop-state|single-winner
cart-lost-update|shop-cart|cart-increments"
fi

shop_pid=""
stop_shop() { if [ -n "$shop_pid" ]; then kill "$shop_pid" 2>/dev/null || true; wait "$shop_pid" 2>/dev/null || true; shop_pid=""; fi; }
trap stop_shop EXIT

reports=$(mktemp -d)
failures=0
table="build|scenario|expected|verdict|caught by|violations"
while IFS='|' read -r build names checker think; do
  [ -n "$build" ] || continue
  bug_args=()
  [ "$build" = none ] || bug_args=(--bug "$build")
  # The unique constraint is dropped or restored at start-up only on an empty coupon_issue.
  psql "$shop_db_url" -qc "DO \$\$ BEGIN IF to_regclass('coupon_issue') IS NOT NULL THEN TRUNCATE coupon_issue; END IF; END \$\$" >/dev/null
  python3 Tests/Fixtures/shop/shop.py --database-url "$shop_db_url" --listen "127.0.0.1:$port" --think-ms "${think:-2}" "${bug_args[@]}" \
    >"$reports/shop-$build.log" 2>&1 &
  shop_pid=$!
  for _ in $(seq 1 100); do
    grep -q "listening" "$reports/shop-$build.log" 2>/dev/null && break
    kill -0 "$shop_pid" 2>/dev/null || { cat "$reports/shop-$build.log" >&2; exit 1; }
    sleep 0.1
  done
  files=()
  for name in $names; do
    if [ -f "$scenarios_dir/$name.yaml" ]; then files+=("$scenarios_dir/$name.yaml"); else files+=("Scenarios/$name.yaml"); fi
  done
  set +e
  timeout -k 5s 300s "$lockproof" verify --quiet --target targets/shop.yaml --report-dir "$reports/$build" "${files[@]}" \
    >"$reports/$build.out" 2>&1
  status=$?
  set -e
  stop_shop
  for name in $names; do
    json="$reports/$build/$name.json"
    if [ ! -f "$json" ]; then
      echo "blackbox-shop: $build/$name wrote no report (exit $status):" >&2
      tail -20 "$reports/$build.out" >&2
      failures=$((failures + 1))
      continue
    fi
    read -r verdict caught violations < <(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r.get("target") == "shop", "the report names no target"
caught = [c["name"] for c in r["checks"] if not c["passed"]]
names = ";".join(v["name"] for c in r["checks"] for v in c["violations"])
print(r["status"], ",".join(caught) or "-", names or "-")' "$json")
    if [ -z "$checker" ]; then
      expected="pass"
      [ "$verdict" = pass ] || { failures=$((failures + 1)); echo "blackbox-shop: $build $name: expected pass, got $verdict ($caught)" >&2; }
    else
      expected="fail by $checker"
      case ",$caught," in
        *",$checker,"*) [ "$verdict" = fail ] || failures=$((failures + 1)) ;;
        *) failures=$((failures + 1)); echo "blackbox-shop: $build $name: expected $checker to catch it, got $verdict ($caught)" >&2 ;;
      esac
    fi
    table="$table
$build|$name|$expected|$verdict|$caught|$violations"
  done
done <<<"$matrix"

echo "$table" | column -t -s '|'
# The reports through a target match the published layout too (`target`, `not_checked`).
for dir in "$reports"/*/; do
  python3 scripts/check_report_schemas.py "$dir" >/dev/null || { failures=$((failures + 1)); python3 scripts/check_report_schemas.py "$dir" >&2; }
done
rm -rf "$reports"
if [ "$failures" -gt 0 ]; then
  echo "blackbox-shop: $failures unexpected verdicts" >&2
  exit 1
fi
echo "blackbox-shop: every verdict as expected"
