#!/usr/bin/env bash
# Where LockProof's client spends its instructions per operation: callgrind (exact, repeatable
# instruction counts) over one client running N operations of a strategy, counting only inside
# the operation (VirtualUser.perform), so schema setup and seeding are left out.
#   scripts/profile-client.sh [operations] [case:strategy ...]
# Default: 300 operations of charge-balance:seed, charge-balance:pessimistic, order-state:seed.
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
        --toggle-collect='*VirtualUser*perform*' \
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
