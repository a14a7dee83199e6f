#!/usr/bin/env bash
# The API-over-core ratio (issue 17), a benchmark, not a test: the charge case under the seed's
# design driven in one run (1) in process by `lockproof bench` (the quick preset's cells for
# charge-balance/seed at BENCH_API_CLIENTS clients, own sessions and pooled on 16, hot and spread,
# with the pgbench ceiling of the same statements), and (2) over HTTP by wrk against
# `lockproof serve --api-address` with --workers = clients and --connections = the pooled cells'
# 16 sessions, on the same PostgreSQL and Redis, the same seed (users 1 or 10,000 at balance
# 999999937, amount 101) and the same length. GET /users/{id} is measured too, against pgbench
# running serve's own SELECT on the same number of sessions. Prints a table; writes
# .run/bench-api/summary.md and summary.json. Run it under scripts/with-services.sh.
#   scripts/bench-api.sh        BENCH_API_SECONDS (default 5), BENCH_API_CLIENTS (64),
#                               BENCH_API_ADDRESS (127.0.0.1:22510), BENCH_API_METRICS_ADDRESS
#                               (127.0.0.1:22511), BENCH_API_BUILD=debug to skip the release build,
#                               BENCH_API_LOCKPROOF=PATH to run a binary built already
# Exit status: 0 when every measurement ran, 1 when one failed, 2 on bad usage (no servers, no wrk).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/serve-lib.sh
. scripts/serve-lib.sh
require_servers
for tool in wrk pgbench psql python3; do
    if ! command -v "$tool" >/dev/null; then
        echo "bench-api: $tool not found (scripts/install-deps.sh bench installs it)" >&2
        exit 2
    fi
done
seconds=${BENCH_API_SECONDS:-5}
clients=${BENCH_API_CLIENTS:-64}
sessions=16
api=${BENCH_API_ADDRESS:-127.0.0.1:22510}
metrics=${BENCH_API_METRICS_ADDRESS:-127.0.0.1:22511}
case "$seconds$clients" in *[!0-9]*) echo "bench-api: BENCH_API_SECONDS and BENCH_API_CLIENTS are whole numbers" >&2; exit 2 ;; esac
out=.run/bench-api
rm -rf "$out"
mkdir -p "$out"

configuration=release
[ "${BENCH_API_BUILD:-release}" = debug ] && configuration=debug
if [ -n "${BENCH_API_LOCKPROOF:-}" ]; then
    # A binary built already (both sides of the ratio run it, so the ratio stays one build's).
    lockproof=$BENCH_API_LOCKPROOF
    configuration="given ($lockproof)"
else
    if ! swift build -c "$configuration" --product lockproof >"$out/build.log" 2>&1; then
        tail -20 "$out/build.log" >&2
        exit 1
    fi
    lockproof="$(swift build -c "$configuration" --show-bin-path)/lockproof"
fi
echo "bench-api: $configuration build, $clients clients, $seconds s per measurement, load average $(cut -d' ' -f1-3 /proc/loadavg)"

# 1. In process: the bench's own cells and their pgbench ceiling.
echo "bench-api: in process (lockproof bench --quick --cases charge-balance --strategies seed --clients $clients)"
# It exits 1 for the seed's claims this narrow selection leaves unmeasured; its cells are what counts.
"$lockproof" bench --quick --cases charge-balance --strategies seed --clients "$clients" --repetitions 1 \
    --seconds "$seconds" --report-dir "$out/core" >"$out/core.log" 2>&1 || true
if ! grep -q '"charge-balance"' "$out/core/bench.json" 2>/dev/null; then
    echo "bench-api: lockproof bench measured no charge-balance cell:" >&2
    tail -20 "$out/core.log" >&2
    exit 1
fi

# 2. Over HTTP: serve on the bench's seed, wrk posting charges and reading users.
# Requests still in flight at serve when wrk stops may meet the TRUNCATE in a deadlock: retried.
seed_users() {
    local attempt
    for attempt in 1 2 3 4 5; do
        seed_users_once "$1" && return 0
        echo "seed attempt $attempt failed; retrying" >>"$out/seed.log"
        sleep 1
    done
    echo "bench-api: seeding failed 5 times (log: $out/seed.log)" >&2
    exit 1
}
seed_users_once() {
    psql "$LOCKPROOF_DATABASE_URL" -v ON_ERROR_STOP=1 -q -v users="$1" >>"$out/seed.log" 2>&1 <<'SQL'
TRUNCATE gateway_charges, payment_intents, compensations, idempotency_keys, stock_ledger, balance_ledger,
    cart_items, order_items, orders, user_coupons, coupons, products, users, spends, spending_limits RESTART IDENTITY;
INSERT INTO users (name, balance) SELECT 'user-' || n, 999999937 FROM generate_series(1, :users) AS n;
INSERT INTO balance_ledger (user_id, delta, reason, reference) SELECT id, balance, 'opening', 'seed' FROM users;
ANALYZE users;
SQL
}
start_serve "$lockproof" "$out" --api-address "$api" --metrics-address "$metrics" --strategy charge-balance=seed \
    --workers "$clients" --connections "$sessions"
url=$serve_url

# wrk's Lua: a random user of N (N = 1: the hot row), as the bench's `random` and `same` picks.
write_lua() { # name method users
    cat >"$out/$1.lua" <<LUA
local users = $3
math.randomseed(os.time())
wrk.method = "$2"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local id = math.random(1, users)
  if wrk.method == "POST" then
    return wrk.format(nil, "/users/" .. id .. "/charges", nil, '{"amount": 101}')
  end
  return wrk.format(nil, "/users/" .. id, nil, nil)
end
LUA
}
run_wrk() { # name method users
    write_lua "$1" "$2" "$3"
    seed_users "$3"
    # A second of warm-up (pools filled, statements prepared), then the measurement.
    wrk -t 2 -c "$clients" -d 1s -s "$out/$1.lua" "$url" >/dev/null 2>&1 || true
    seed_users "$3"
    wrk -t 2 -c "$clients" -d "${seconds}s" --timeout 30s --latency -s "$out/$1.lua" "$url" >"$out/$1.wrk" 2>&1
}
echo "bench-api: over HTTP (wrk -t 2 -c $clients against serve --workers $clients --connections $sessions)"
run_wrk charge-spread POST 10000
run_wrk charge-hot POST 1
run_wrk get-spread GET 10000

# 3. The read's ceiling: pgbench running serve's SELECT on serve's session count.
seed_users 10000
cat >"$out/get-user.sql" <<'SQL'
\set id random(1, 10000)
SELECT id, balance, version FROM users WHERE id = :id;
SQL
pgbench -n -M prepared -c "$sessions" -j 2 -T "$seconds" -f "$out/get-user.sql" "$LOCKPROOF_DATABASE_URL" >"$out/get-user.pgbench" 2>&1

python3 - "$out" "$clients" "$sessions" "$seconds" <<'PY'
import json, re, sys

out, clients, sessions, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def wrk(name):
    text = open(f"{out}/{name}.wrk").read()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    p99 = re.search(r"\s99%\s+([\d.]+)(us|ms|s)\b", text)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    return {
        "requests_per_second": rate,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "p99_ms": float(p99.group(1)) * scale[p99.group(2)] if p99 else None,
    }

def median(value):
    return value.get("median") if isinstance(value, dict) else value

bench = json.load(open(f"{out}/core/bench.json"))
cells = {}
for cell in bench["cells"]:
    if cell["case"] == "charge-balance" and cell["strategy"] == "seed" and cell["clients"] == clients:
        key = (cell["contention"], cell.get("pool_sessions"))
        cells[key] = cell

def core(contention, pool):
    cell = cells.get((contention, pool))
    if not cell:
        return None
    ceiling = cell.get("ceiling_transactions_per_second")
    p99 = cell.get("latency_p99_seconds")
    return {
        # Spreads over repetitions ({median, min, max, …}): one repetition here, its median is it.
        "operations_per_second": median(cell["throughput_per_second"]),
        "ceiling_transactions_per_second": median(ceiling),
        "p99_ms": None if median(p99) is None else median(p99) * 1000,
        "failed_operations": cell.get("failed_operations"),
    }

pg = open(f"{out}/get-user.pgbench").read()
pg_tps = float(re.search(r"tps = ([\d.]+)", pg).group(1))
rows, summary = [], {"clients": clients, "sessions": sessions, "seconds": seconds, "rows": []}
for name, contention in (("charge-spread", "spread"), ("charge-hot", "hot")):
    http = wrk(name)
    pooled, own = core(contention, sessions), core(contention, None)
    # The quick preset pools only the spread cells; the hot row is compared with its own-session cell.
    label = f"POST /users/{{id}}/charges ({contention})" + ("" if pooled else f", core on {clients} own sessions")
    pooled = pooled or own
    row = {"measurement": label, "http": http, "core_pooled": pooled, "core_own_sessions": own}
    if pooled:
        row["api_over_core"] = http["requests_per_second"] / pooled["operations_per_second"]
        if pooled["ceiling_transactions_per_second"]:
            row["api_over_ceiling"] = http["requests_per_second"] / pooled["ceiling_transactions_per_second"]
    summary["rows"].append(row)
get = wrk("get-spread")
summary["rows"].append({
    "measurement": "GET /users/{id} (spread)", "http": get, "pgbench_same_select_tps": pg_tps,
    "api_over_ceiling": get["requests_per_second"] / pg_tps,
})
json.dump(summary, open(f"{out}/summary.json", "w"), indent=2)

def fmt(x, digits=0):
    return "–" if x is None else f"{x:,.{digits}f}"

lines = [
    f"| measurement ({clients} clients, {sessions} sessions, {seconds} s) | HTTP req/s (non-2xx) | HTTP p99 ms | "
    "in process ops/s (pooled on 16 unless said) | in process p99 ms | pgbench ceiling tps | API / core | API / ceiling |",
    "|---|---|---|---|---|---|---|---|",
]
for row in summary["rows"]:
    http = row["http"]
    pooled = row.get("core_pooled") or {}
    ceiling = pooled.get("ceiling_transactions_per_second") or row.get("pgbench_same_select_tps")
    lines.append(
        f"| {row['measurement']} | {fmt(http['requests_per_second'])} ({http['non_2xx']}) | {fmt(http['p99_ms'], 1)} | "
        f"{fmt(pooled.get('operations_per_second'))} | {fmt(pooled.get('p99_ms'), 1)} | {fmt(ceiling)} | "
        f"{fmt(row.get('api_over_core'), 2)} | {fmt(row.get('api_over_ceiling'), 2)} |")
for contention in ("spread", "hot"):
    own = core(contention, None)
    if own:
        lines.append(f"\nIn process, {clients} clients on their own sessions ({contention}): {fmt(own['operations_per_second'])} ops/s, "
                     f"p99 {fmt(own['p99_ms'], 1)} ms.")
open(f"{out}/summary.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
echo "bench-api: reports in $out (summary.md, summary.json, core/bench.json, *.wrk)"
