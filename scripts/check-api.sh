#!/usr/bin/env bash
# The contract check of the HTTP API (issue 17): starts `lockproof serve --api-address` on the
# configured PostgreSQL and Redis (run it under scripts/with-services.sh; `make test` does), seeds a
# few users, products, coupons and orders, and runs schemathesis against api/openapi.yaml with every
# check (api/schemathesis.toml): any 5xx, any response that breaks the document, and any request the
# document allows that the server rejects (400/413/415/422) fail it. Prints how many test cases
# schemathesis generated. Stops serve however it ends.
#   scripts/check-api.sh            API_CHECK_EXAMPLES (default 50) per operation, API_CHECK_SEED (default 1);
#                                   API_CHECK_API_ADDRESS / API_CHECK_METRICS_ADDRESS (default 127.0.0.1:0, a free port)
# Exit status: 0 when schemathesis found nothing, 1 otherwise, 2 on bad usage (no servers, no schemathesis).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/serve-lib.sh
. scripts/serve-lib.sh
require_servers
schemathesis=$(command -v schemathesis || true)
if [ -z "$schemathesis" ]; then
    echo "check-api: schemathesis not found (scripts/install-deps.sh installs it from scripts/requirements-dev.txt)" >&2
    exit 2
fi
examples=${API_CHECK_EXAMPLES:-50}
seed=${API_CHECK_SEED:-1}
work=.run/check-api
rm -rf "$work"
mkdir -p "$work"

if ! swift build --product lockproof >"$work/build.log" 2>&1; then
    tail -20 "$work/build.log" >&2
    exit 1
fi
lockproof="$(swift build --show-bin-path)/lockproof"

start_serve "$lockproof" "$work" --metrics-address "${API_CHECK_METRICS_ADDRESS:-127.0.0.1:0}" \
    --api-address "${API_CHECK_API_ADDRESS:-127.0.0.1:0}" --workers 8 --connections 4
url=$serve_url

# One schemathesis worker: with two, CPython 3.11 sometimes fails inside schemathesis itself
# ("SystemError: AST constructor recursion depth mismatch", a runtime error, not a finding).

# Test data: ids 1-20 of each exist (schemathesis also finds them through the document's links).
psql "$LOCKPROOF_DATABASE_URL" -v ON_ERROR_STOP=1 -q >"$work/seed.log" 2>&1 <<'SQL'
INSERT INTO users (balance) SELECT 100000 FROM generate_series(1, 20);
INSERT INTO spending_limits (user_id, daily_limit) SELECT id, 1000000 FROM users ON CONFLICT (user_id) DO NOTHING;
INSERT INTO products (price, stock) SELECT 10, 1000 FROM generate_series(1, 20);
INSERT INTO coupons (total_quantity) SELECT 100 FROM generate_series(1, 20);
INSERT INTO orders (user_id, status, total_amount)
    SELECT id, 'PENDING', 10 FROM users ORDER BY id LIMIT 20;
INSERT INTO order_items (order_id, product_id, quantity, unit_price)
    SELECT o.id, (SELECT min(id) FROM products), 1, 10 FROM orders o;
SQL

echo "check-api: schemathesis against $url (api/openapi.yaml, every check, $examples examples per operation, seed $seed)"
status=0
"$schemathesis" --config-file api/schemathesis.toml run api/openapi.yaml --url "$url" --checks all \
    --max-examples "$examples" --seed "$seed" --workers 1 --request-timeout 30 --no-color >"$work/schemathesis.log" 2>&1 || status=$?
if [ "$status" -ne 0 ]; then
    sed -n '/FAILURES/,$p' "$work/schemathesis.log"
    [ -s "$work/schemathesis.log" ] && ! grep -q FAILURES "$work/schemathesis.log" && tail -40 "$work/schemathesis.log"
fi
generated=$(grep -E '[0-9]+ generated' "$work/schemathesis.log" | tail -1 | sed 's/^ *//')
echo "check-api: ${generated:-no test cases reported}"
if [ "$status" -ne 0 ]; then
    echo "check-api: FAILED (log: $work/schemathesis.log)"
    exit 1
fi
echo "check-api: the server keeps the contract"
