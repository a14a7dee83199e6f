#!/usr/bin/env bash
# Where LockProof's client spends its instructions per operation: callgrind (exact, repeatable
# instruction counts) over one client running N operations of a strategy, counting only inside
# the operation (ClientLoop.perform), so schema setup and seeding are left out.
#   scripts/profile-client.sh [operations] [case:strategy ...]
# Default: 300 operations of charge-balance:seed, charge-balance:pessimistic, order-state:seed.
# PROFILE_PGBENCH=1: instead, LockProof against pgbench running the strategy's derived script, on
# the benchmark's spread seed, each counted over N operations and over 2, the difference divided
# by N - 2: LockProof inside ClientLoop.perform (which includes what the runner does with each
# finished operation: the history and its checkers, the statistics, the progress count) and
# pgbench's whole process (one thread per client group; nothing else runs in it). The scripts
# come from a benchmark report (PROFILE_BENCH_JSON, default .run/bench/bench.json).
# Needs the servers (run inside scripts/with-services.sh) and valgrind; builds release.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
operations=${1:-300}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(charge-balance:seed charge-balance:pessimistic order-state:seed)
command -v valgrind >/dev/null || { echo "profile-client: valgrind not found (apt-get install valgrind)" >&2; exit 2; }
swift build -c release --product lockproof >/dev/null
out=.run/profile
mkdir -p "$out"
# valgrind cannot read the DWARF of Swift's release build: profile a copy with the symbols only.
strip --strip-debug -o "$out/lockproof" .build/release/lockproof
if [ "${PROFILE_PGBENCH:-0}" = 1 ]; then
    bench_json=${PROFILE_BENCH_JSON:-.run/bench/bench.json}
    [ -f "$bench_json" ] || { echo "profile-client: $bench_json not found (run make bench first)" >&2; exit 2; }
    pgbench=$(pg_config --bindir)/pgbench
    [ -x "$pgbench" ] || { echo "profile-client: pgbench not found in $(pg_config --bindir)" >&2; exit 2; }
    for target in "${targets[@]}"; do
        case_name=${target%%:*}
        strategy=${target#*:}
        # The benchmark's spread seed (BenchCase.scenarioYAML), so pgbench's picks find their rows.
        extra=""
        pick=random
        case "$case_name" in
            charge-balance) seed="users: 10000, balance: 999999937"; extra="  amount: 101" ;;
            process-payment) seed="users: 10000, balance: 999999937, products: 1000, price: 13, stock: 999999929, orders: 8000, order_items: 1, order_quantity: 2"; pick=per-operation ;;
            issue-coupon) seed="users: 20000, coupon_quantity: 10000000"; pick=per-operation ;;
            create-order) seed="users: 10000, products: 1000, price: 13, stock: 999999929"; extra="  items: 2
  quantity: 3" ;;
            order-state) seed="users: 1000, orders: 20000, price: 13"; pick=per-operation; extra="  mix: {complete: 1, cancel: 1}" ;;
            cart-quantity) seed="users: 10000, products: 100"; extra="  quantity: 3" ;;
        esac
        key="$case_name/$strategy/spread"
        python3 scripts/pgbench_script.py "$bench_json" "$key" "$out/$case_name-$strategy.sql" "$out/$case_name-$strategy.defs" || exit 1
        mapfile -t defines <"$out/$case_name-$strategy.defs"
        for count in 2 "$operations"; do
            cat >"$out/$case_name-$strategy-$count.yaml" <<YAML
name: profile-$case_name-$strategy-$count
description: one client under callgrind against pgbench
case: $case_name
strategy: $strategy
seed: {$seed}
workload:
  virtual_users: 1
  iterations: $count
  pick: $pick
$extra
expect: pass
YAML
            valgrind --tool=callgrind --callgrind-out-file="$out/whole-$case_name-$strategy-$count.callgrind" \
                --toggle-collect='*ClientLoop*perform*' "$out/lockproof" run "$out/$case_name-$strategy-$count.yaml" --quiet >"$out/whole-$case_name-$strategy-$count.log" 2>&1 || true
            grep -q "^operations: $count ok" "$out/whole-$case_name-$strategy-$count.log" || {
                echo "profile-client: $case_name/$strategy did not run $count successful operations (see $out/whole-$case_name-$strategy-$count.log)" >&2; exit 1; }
            valgrind --tool=callgrind --callgrind-out-file="$out/pgbench-$case_name-$strategy-$count.callgrind" \
                "$pgbench" -n -M prepared -f "$out/$case_name-$strategy.sql" -c 1 -j 1 -t "$count" -D clients=1 -D n=0 \
                "${defines[@]}" "$LOCKPROOF_DATABASE_URL" >"$out/pgbench-$case_name-$strategy-$count.log" 2>&1 || {
                echo "profile-client: pgbench failed (see $out/pgbench-$case_name-$strategy-$count.log)" >&2; exit 1; }
        done
        total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'; }
        lockproof=$(( ($(total "$out/whole-$case_name-$strategy-$operations.callgrind") - $(total "$out/whole-$case_name-$strategy-2.callgrind")) / (operations - 2) ))
        ceiling=$(( ($(total "$out/pgbench-$case_name-$strategy-$operations.callgrind") - $(total "$out/pgbench-$case_name-$strategy-2.callgrind")) / (operations - 2) ))
        echo "$case_name/$strategy: LockProof $lockproof instructions per operation; pgbench $ceiling per transaction of the same statements ($((lockproof - ceiling)) more)"
    done
    exit 0
fi
for target in "${targets[@]}"; do
    case_name=${target%%:*}
    strategy=${target#*:}
    mix=""
    seed="users: 1000, balance: 1000"
    case "$case_name" in
        order-state) mix="  mix: {complete: 1, cancel: 1}"; seed="users: 1000, orders: $((operations + 10))" ;;
        process-payment) seed="users: 1000, balance: 1000000000, products: 100, stock: 1000000000, orders: $((operations + 10))" ;;
        issue-coupon) seed="users: $((operations + 10)), coupon_quantity: 1000000" ;;
        create-order) seed="users: 1000, products: 100, stock: 1000000000" ;;
        cart-quantity) seed="users: 1000, products: 100" ;;
    esac
    cat >"$out/$case_name-$strategy.yaml" <<YAML
name: profile-$case_name-$strategy
description: one client under callgrind
case: $case_name
strategy: $strategy
seed: {$seed}
workload:
  virtual_users: 1
  iterations: $operations
  pick: per-operation
$mix
expect: pass
YAML
    valgrind --tool=callgrind --callgrind-out-file="$out/$case_name-$strategy.callgrind" \
        --toggle-collect='*ClientLoop*perform*' \
        "$out/lockproof" run "$out/$case_name-$strategy.yaml" --quiet >"$out/$case_name-$strategy.log" 2>&1 || true
    grep -E "^operations:" "$out/$case_name-$strategy.log" | sed "s/^/$case_name\/$strategy: /"
    total=$(callgrind_annotate "$out/$case_name-$strategy.callgrind" 2>/dev/null | awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }')
    if ! grep -q "^operations: $operations ok" "$out/$case_name-$strategy.log" || [ -z "$total" ] || [ "$total" -eq 0 ]; then
        echo "profile-client: $case_name/$strategy did not run $operations successful operations (see $out/$case_name-$strategy.log)" >&2
        exit 1
    fi
    echo "$case_name/$strategy: $((total / operations)) instructions per operation (client side, in the operation)"
    echo "  most expensive functions, inclusive, per operation:"
    callgrind_annotate --inclusive=yes "$out/$case_name-$strategy.callgrind" 2>/dev/null \
        | awk -v ops="$operations" 'found && NF >= 3 && $1 ~ /^[0-9,]+$/ { c = $1; gsub(",", "", c); $1 = ""; $2 = ""; printf "  %10d  %s\n", c / ops, substr($0, 1, 160); n++ } /file:function/ { found = 1 } n >= 25 { exit }' || true
    echo "  most expensive functions, self, per operation:"
    callgrind_annotate "$out/$case_name-$strategy.callgrind" 2>/dev/null \
        | awk -v ops="$operations" 'found && NF >= 3 && $1 ~ /^[0-9,]+$/ { c = $1; gsub(",", "", c); $1 = ""; $2 = ""; printf "  %10d  %s\n", c / ops, substr($0, 1, 160); n++ } /file:function/ { found = 1 } n >= 12 { exit }' || true
done
