#!/usr/bin/env bash
# Black-box scale figures (issue 18), a benchmark, not a test. Against one `lockproof serve
# --api-address` (its own database, LockProof's schema, targets/lockproof-serve.yaml):
#  (a) virtual users one `lockproof run --target` process sustains, for each client engine in
#      BENCH_TARGET_ENGINES (`--client-engine`: events, one epoll loop thread; threads, one thread
#      per virtual user): for each N in BENCH_TARGET_VUS (BENCH_TARGET_THREAD_VUS for threads), a charge-balance scenario of N virtual users ×
#      BENCH_TARGET_ITERATIONS charges; records whether the run completed (exit 0, a report, no
#      "could not start every client"), the history's ok/fail/unknown and fail reasons (the
#      service's refusals apart from the client's own errors: connection_failed, connection_lost,
#      timeout), the 503s serve answered, requests/s over the process's wall time, the process's peak RSS
#      (/usr/bin/time) and peak thread count (/proc, sampled). The open-file limit is raised to
#      its hard limit (a connection per virtual user).
#  (b) the client's CPU per request against wrk's, on the same requests in the same run:
#      POST /users/{id}/charges {"amount": 100} over BENCH_TARGET_CPU_CONNECTIONS keep-alive
#      connections. lockproof: a run of C virtual users × BENCH_TARGET_CPU_ITERATIONS charges, CPU =
#      whole process's (/usr/bin/time user+sys) less that of the same run with one charge per
#      virtual user (startup, reset, seed and checkers cancel out); wrk: `wrk -t 1 -c C`
#      for BENCH_TARGET_CPU_SECONDS, CPU from /usr/bin/time over the requests it counted.
# Prints a table; writes .run/bench-target/summary.md. Run it under scripts/with-services.sh.
#   BENCH_TARGET_ENGINES ("events threads"), BENCH_TARGET_VUS ("64 256 512 1000"; at most 10000),
#   BENCH_TARGET_THREAD_VUS (BENCH_TARGET_VUS: the thread-per-user engine's sizes),
#   BENCH_TARGET_ITERATIONS (5), BENCH_TARGET_CPU_CONNECTIONS (8), BENCH_TARGET_CPU_ITERATIONS (500),
#   BENCH_TARGET_CPU_SECONDS (5), SERVE_PORT (28700: API; +100: its /metrics),
#   BENCH_TARGET_WORKERS (serve --workers, 64), BENCH_TARGET_LOCKPROOF=PATH (default .build/debug/lockproof)
# Exit status: 0 when every measurement ran (a run that did not sustain N is a finding, in the
# table), 1 when the setup failed, 2 on bad usage (no servers, no wrk).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# shellcheck source=scripts/serve-lib.sh
. scripts/serve-lib.sh
require_servers
for tool in wrk psql python3 /usr/bin/time; do
    if ! command -v "$tool" >/dev/null; then
        echo "bench-target: $tool not found (scripts/install-deps.sh bench installs wrk; /usr/bin/time is the time package)" >&2
        exit 2
    fi
done
vus=${BENCH_TARGET_VUS:-64 256 512 1000}
thread_vus=${BENCH_TARGET_THREAD_VUS:-$vus}
engines=${BENCH_TARGET_ENGINES:-events threads}
for engine in $engines; do
    case "$engine" in events|threads) ;; *) echo "bench-target: BENCH_TARGET_ENGINES: found $engine; expected events or threads" >&2; exit 2 ;; esac
done
# A socket per virtual user: as many open files as allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
iterations=${BENCH_TARGET_ITERATIONS:-5}
cpu_connections=${BENCH_TARGET_CPU_CONNECTIONS:-8}
cpu_iterations=${BENCH_TARGET_CPU_ITERATIONS:-500}
cpu_seconds=${BENCH_TARGET_CPU_SECONDS:-5}
workers=${BENCH_TARGET_WORKERS:-64}
port=${SERVE_PORT:-28700}
lockproof=${BENCH_TARGET_LOCKPROOF:-.build/debug/lockproof}
case "$vus $thread_vus $iterations $cpu_connections $cpu_iterations $cpu_seconds $workers $port" in
    *[!0-9\ ]*) echo "bench-target: the BENCH_TARGET_* counts and SERVE_PORT are whole numbers" >&2; exit 2 ;;
esac
[ -x "$lockproof" ] || { echo "bench-target: $lockproof is not built (swift build)" >&2; exit 2; }
out=.run/bench-target
rm -rf "$out"
mkdir -p "$out"

# serve on a database of its own: a target's database is not LockProof's.
database=lockproof_bench_target
serve_db_url="${LOCKPROOF_DATABASE_URL%/*}/$database"
psql "$LOCKPROOF_DATABASE_URL" -qtAc "SELECT 1 FROM pg_database WHERE datname = '$database'" | grep -q 1 \
    || psql "$LOCKPROOF_DATABASE_URL" -qc "CREATE DATABASE $database" >/dev/null
LOCKPROOF_DATABASE_URL="$serve_db_url" start_serve "$lockproof" "$out" --api-address "127.0.0.1:$port" \
    --metrics-address "127.0.0.1:$((port + 100))" --workers "$workers" --connections 16
export LOCKPROOF_SERVE_URLS="$serve_url" LOCKPROOF_SERVE_DATABASE_URL="$serve_db_url"
echo "bench-target: $lockproof, serve at $serve_url (--workers $workers --connections 16), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

scenario() { # name virtual-users iterations users
    cat >"$out/$1.yaml" <<YAML
name: $1
case: charge-balance
strategy: seed
seed: {users: $4, balance: 0}
workload: {virtual_users: $2, iterations: $3, start: barrier, pick: random, amount: 100, random_seed: 5, timeout: 600s}
expect: pass
YAML
}

# Runs lockproof on scenario $1 with client engine $2, sampling its thread count; writes $out/$1.{time,threads,out}.
run_sampled() {
    local name=$1 engine=$2 time_pid pid peak=0 threads
    /usr/bin/time -f "%M %e %U %S" -o "$out/$name.time" \
        "$lockproof" run --quiet --client-engine "$engine" --target targets/lockproof-serve.yaml --report-dir "$out/$name" "$out/$name.yaml" \
        >"$out/$name.out" 2>&1 &
    time_pid=$!
    pid=""
    while kill -0 "$time_pid" 2>/dev/null; do
        [ -n "$pid" ] || pid=$(pgrep -P "$time_pid" | head -1 || true)
        if [ -n "$pid" ]; then
            threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
            [ "${threads:-0}" -gt "$peak" ] && peak=$threads
        fi
        sleep 0.05
    done
    set +e
    wait "$time_pid"
    echo $? >"$out/$name.status"
    set -e
    echo "$peak" >"$out/$name.threads"
}

echo "bench-target: ulimit -n $(ulimit -n); (a) virtual users, $iterations charges each"
for engine in $engines; do
    sizes=$vus
    [ "$engine" = threads ] && sizes=$thread_vus
    for n in $sizes; do
        scenario "$engine-vus-$n" "$n" "$iterations" 1000
        run_sampled "$engine-vus-$n" "$engine"
        echo "  $engine, $n virtual users: exit $(cat "$out/$engine-vus-$n.status"), $(cat "$out/$engine-vus-$n.threads") threads at peak"
    done
done

echo "bench-target: (b) CPU per request: lockproof $cpu_connections virtual users × $cpu_iterations, wrk -t 1 -c $cpu_connections for $cpu_seconds s"
# The same run with one charge per virtual user: its CPU (startup, reset, seed, checkers) is
# subtracted, so what is left is the requests' own.
for engine in $engines; do
    scenario "$engine-cpu-base" "$cpu_connections" 1 1000
    run_sampled "$engine-cpu-base" "$engine"
    scenario "$engine-cpu" "$cpu_connections" "$cpu_iterations" 1000
    run_sampled "$engine-cpu" "$engine"
done
cat >"$out/charge.lua" <<'LUA'
math.randomseed(5)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, application/problem+json"
request = function()
  return wrk.format(nil, "/users/" .. math.random(1, 1000) .. "/charges", nil, '{"amount":100}')
end
LUA
# The users wrk charges: the seed of the cpu run is still in serve's database (its reset runs at the next run).
/usr/bin/time -f "%M %e %U %S" -o "$out/wrk.time" wrk -t 1 -c "$cpu_connections" -d "${cpu_seconds}s" --timeout 30s \
    -s "$out/charge.lua" "$serve_url" >"$out/wrk.out" 2>&1

python3 - "$out" "$vus" "$cpu_connections" "$cpu_iterations" "$engines" "$thread_vus" <<'PY'
import json, os, re, sys
out, vus, conns, cpu_iterations = sys.argv[1], sys.argv[2].split(), int(sys.argv[3]), int(sys.argv[4])
engines, thread_vus = sys.argv[5].split(), sys.argv[6].split()
client_errors = {"connection_failed", "connection_lost", "timeout", "unexpected_response", "error"}

def run(name):
    rss_kb, wall, user, system = open(f"{out}/{name}.time").read().split()[-4:]
    status = int(open(f"{out}/{name}.status").read())
    threads = int(open(f"{out}/{name}.threads").read())
    report = f"{out}/{name}/{name}.json"
    r = json.load(open(report)) if os.path.exists(report) else None
    return dict(status=status, threads=threads, rss_mb=int(rss_kb) / 1024, wall=float(wall),
                cpu=float(user) + float(system), report=r)

lines = ["## Black-box: virtual users one `lockproof run --target` sustains, by client engine", "",
         "| engine | virtual users | completed | ok | fail | unknown | client errors | service refusals | 503s | requests/s (wall) | peak RSS MB | peak threads | wall s |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for engine in engines:
    for n in (thread_vus if engine == "threads" else vus):
        r = run(f"{engine}-vus-{n}")
        rep = r["report"]
        if rep is None:
            lines.append(f"| {engine} | {n} | no report (exit {r['status']}) | | | | | | | | {r['rss_mb']:.0f} | {r['threads']} | {r['wall']:.1f} |")
            continue
        ops = rep["operations"]
        reasons = ops["fail_reasons"]
        errors = {k: v for k, v in reasons.items() if k in client_errors}
        refusals = {k: v for k, v in reasons.items() if k not in client_errors}
        # serve answers 503 when a lock wait or its pool gives up, or it is overloaded: the target file names them.
        unknown_reasons = ops.get("unknown_reasons", {})
        busy = sum(v for k, v in list(reasons.items()) + list(unknown_reasons.items()) if k in ("unavailable", "pool_timeout", "lock_timeout"))
        completed = "yes" if rep.get("error") in (None, "") and not rep.get("interrupted") else f"no: {rep.get('error')}"
        fmt = lambda d: ", ".join(f"{k} {v}" for k, v in sorted(d.items())) or "0"
        total = ops["ok"] + ops["fail"] + ops["unknown"]
        seconds = r["wall"]  # the whole process, startup and checkers included
        lines.append(f"| {engine} | {n} | {completed} | {ops['ok']} | {ops['fail']} | {ops['unknown']} | {fmt(errors)} | {fmt(refusals)} | {busy} | "
                     f"{total / seconds:.0f} | {r['rss_mb']:.0f} | {r['threads']} | {r['wall']:.1f} |")

count = lambda r: sum((r["report"] or {}).get("operations", {}).get(k, 0) for k in ("ok", "fail", "unknown"))
wrk_text = open(f"{out}/wrk.out").read()
m = re.search(r"(\d+) requests in", wrk_text)
wrk_requests = int(m.group(1)) if m else 0
_, _, wu, ws = open(f"{out}/wrk.time").read().split()[-4:]
wrk_cpu = float(wu) + float(ws)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk_text)
lines += ["", f"## Black-box: client CPU per request vs wrk (POST /users/{{id}}/charges, {conns} keep-alive connections)", "",
          "| client | requests | CPU s | CPU µs per request |", "|---|---|---|---|"]
per = lambda cpu, n: cpu / n * 1e6 if n else float("nan")
alone = {}
for engine in engines:
    c, b = run(f"{engine}-cpu"), run(f"{engine}-cpu-base")
    requests, base_requests = count(c), count(b)
    extra_cpu, extra_requests = c["cpu"] - b["cpu"], requests - base_requests
    alone[engine] = per(extra_cpu, extra_requests)
    lines.append(f"| lockproof run --client-engine {engine}, whole process (/usr/bin/time) | {requests} | {c['cpu']:.3f} | {per(c['cpu'], requests):.0f} |")
    lines.append(f"| lockproof run --client-engine {engine}, one charge per virtual user (startup, reset, seed, checkers) | {base_requests} | {b['cpu']:.3f} | |")
    lines.append(f"| lockproof --client-engine {engine}, the requests alone (difference of the two) | {extra_requests} | {extra_cpu:.3f} | {alone[engine]:.0f} |")
lines.append(f"| wrk -t 1 (/usr/bin/time, Lua request function) | {wrk_requests} | {wrk_cpu:.3f} | {per(wrk_cpu, wrk_requests):.0f} |")
if wrk_requests:
    base = per(wrk_cpu, wrk_requests)
    for engine in engines:
        lines.append(f"\nRatio (same run), {engine}: lockproof per request / wrk per request = {alone[engine] / base:.1f}×.")
if non2xx:
    lines.append(f"wrk saw {non2xx.group(1)} non-2xx answers (refusals count as requests for both).")
text = "\n".join(lines) + "\n"
open(f"{out}/summary.md", "w").write(text)
print(text)
PY
