#!/usr/bin/env python3
"""Claim 3 at the level of instances (issue 17): the charge case through 1 and N `serve`
instances, 64 clients over HTTP on one hot user, with the seed strategy (Redis lock + optimistic
version check) and with the Redis lock removed (optimistic-retry: the same transaction and retry).

    eval "$(scripts/services.sh start)"; swift build
    python3 scripts/bench_cluster.py [--instances 1,4] [--clients 64] [--seconds 10] [--base-port 21600]

For each strategy and instance count it starts the cluster (scripts/cluster.sh, run folder
.run/bench-cluster), adds a fresh hot user through psql, sends charges of 1 from --clients
threads (keep-alive connections, spread round-robin over the instances) for --seconds, and reads
every instance's /metrics before and after: retries (lockproof_retry_attempts_total), optimistic
conflicts, Redis lock waits (lockproof_lock_wait_seconds{lock="redis"}: count, sum) and lock acquire
failures. Prints one row per run and the ratios against the 1-instance run of the same strategy
in this session (speed is only ever compared within one run of this script). A bench, not a test:
it asserts nothing. Exit status: 0 done, 1 a cluster did not start, 2 bad arguments.
"""

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRATEGIES = [
    ("seed", "Redis lock + version check (seed)"),
    ("optimistic-retry", "version check, no Redis lock"),
]
COUNTERS = {
    "retries": "lockproof_retry_attempts_total",
    "conflicts": "lockproof_optimistic_conflicts_total",
    "lock_waits": "lockproof_lock_wait_seconds_count",
    "lock_wait_seconds": "lockproof_lock_wait_seconds_sum",
    "lock_failures": "lockproof_lock_acquire_failures_total",
}


def scrape(port):
    """Sums each counter family's charge-balance samples on one instance."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    totals = dict.fromkeys(COUNTERS, 0.0)
    for line in text.splitlines():
        if line.startswith("#") or 'case="charge-balance"' not in line:
            continue
        name = line.split("{", 1)[0]
        for key, family in COUNTERS.items():
            if name == family and (not key.startswith("lock_wait") or 'lock="redis"' in line):
                totals[key] += float(line.rsplit(" ", 1)[1])
    return totals


def cluster(arguments, environment):
    return subprocess.run(
        ["bash", os.path.join(ROOT, "scripts/cluster.sh")] + arguments,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def hot_user(database_url):
    output = subprocess.run(
        [
            "psql",
            database_url,
            "-Atq",
            "-c",
            "INSERT INTO users (name, balance) VALUES ('bench-hot-user', 0) RETURNING id",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(output.stdout.strip().splitlines()[0])


def load(ports, user, clients, seconds):
    """`clients` threads post charges until `seconds` have passed; returns latencies (s) and statuses."""
    barrier = threading.Barrier(clients + 1)
    stop = threading.Event()
    latencies = [[] for _ in range(clients)]
    statuses = [dict() for _ in range(clients)]
    body = json.dumps({"amount": 1})

    def client(index):
        port = ports[index % len(ports)]
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        barrier.wait(timeout=60)
        while not stop.is_set():
            started = time.monotonic()
            try:
                connection.request(
                    "POST", f"/users/{user}/charges", body=body, headers={"Content-Type": "application/json"}
                )
                response = connection.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            except (OSError, http.client.HTTPException):
                status = "error"
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            latencies[index].append(time.monotonic() - started)
            statuses[index][status] = statuses[index].get(status, 0) + 1
        connection.close()

    threads = [threading.Thread(target=client, args=(index,), daemon=True) for index in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=60)
    started = time.monotonic()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    elapsed = time.monotonic() - started
    merged = {}
    for part in statuses:
        for status, count in part.items():
            merged[str(status)] = merged.get(str(status), 0) + count
    return sorted(value for part in latencies for value in part), merged, elapsed


def percentile(values, share):
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(share * len(values)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--instances", default="1,4", help="instance counts, comma-separated (the first is the ratios' base)"
    )
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--base-port", type=int, default=int(os.environ.get("LOCKPROOF_CLUSTER_PORT_BASE", "21600"))
    )
    parser.add_argument("--json", help="also write the rows to this file")
    options = parser.parse_args()
    try:
        counts = [int(text) for text in options.instances.split(",")]
    except ValueError:
        print(
            f"bench_cluster: --instances: '{options.instances}' is not a comma-separated list of counts",
            file=sys.stderr,
        )
        return 2
    if (
        not all(1 <= count <= 100 for count in counts)
        or not 1 <= options.clients <= 1000
        or options.seconds <= 0
    ):
        print("bench_cluster: --instances 1..100 each, --clients 1..1000, --seconds > 0", file=sys.stderr)
        return 2
    database_url = os.environ.get("LOCKPROOF_DATABASE_URL")
    if not database_url or not os.environ.get("LOCKPROOF_REDIS_URL"):
        print(
            "bench_cluster: LOCKPROOF_DATABASE_URL and LOCKPROOF_REDIS_URL must name the servers "
            "(scripts/services.sh start)",
            file=sys.stderr,
        )
        return 2
    environment = dict(os.environ, LOCKPROOF_CLUSTER_DIR=os.path.join(ROOT, ".run/bench-cluster"))
    rows = []
    for strategy, label in STRATEGIES:
        for count in counts:
            started = cluster(
                [
                    "start",
                    str(count),
                    str(options.base_port),
                    "--",
                    "--strategy",
                    f"charge-balance={strategy}",
                    "--workers",
                    str(max(64, options.clients)),
                    "--connections",
                    "10",
                ],
                environment,
            )
            if started.returncode != 0:
                print(f"bench_cluster: the cluster did not start: {started.stderr.strip()}", file=sys.stderr)
                cluster(["stop"], environment)
                return 1
            try:
                ports = [options.base_port + k for k in range(count)]
                user = hot_user(database_url)
                before = [scrape(port + 100) for port in ports]
                latencies, statuses, elapsed = load(ports, user, options.clients, options.seconds)
                after = [scrape(port + 100) for port in ports]
            finally:
                cluster(["stop"], environment)
            delta = {
                key: sum(a[key] - b[key] for a, b in zip(after, before, strict=True)) for key in COUNTERS
            }
            ok = statuses.get("200", 0)
            rows.append(
                {
                    "strategy": strategy,
                    "label": label,
                    "instances": count,
                    "clients": options.clients,
                    "requests": len(latencies),
                    "ok": ok,
                    "statuses": statuses,
                    "seconds": round(elapsed, 2),
                    "throughput": ok / elapsed,
                    "p50": percentile(latencies, 0.50),
                    "p99": percentile(latencies, 0.99),
                    "retries": delta["retries"],
                    "conflicts": delta["conflicts"],
                    "lock_waits": delta["lock_waits"],
                    "lock_wait_mean": delta["lock_wait_seconds"] / delta["lock_waits"]
                    if delta["lock_waits"]
                    else 0.0,
                    "lock_failures": delta["lock_failures"],
                }
            )
            row = rows[-1]
            print(
                f"{strategy:17} x{count}: {ok}/{row['requests']} ok {statuses} in {row['seconds']} s, "
                f"{row['throughput']:.1f} charges/s, p50 {row['p50'] * 1000:.1f} ms, "
                f"p99 {row['p99'] * 1000:.1f} ms, retries {row['retries']:.0f} "
                f"({row['retries'] / max(ok, 1):.2f}/charge), conflicts {row['conflicts']:.0f}, "
                f"lock waits {row['lock_waits']:.0f} (mean {row['lock_wait_mean'] * 1000:.1f} ms), "
                f"lock acquire failures {row['lock_failures']:.0f}",
                flush=True,
            )
    print("\nratios against the 1st instance count of the same strategy, this session:")
    print(
        "| strategy | instances | throughput | p99 | retries/charge | lock waits/charge "
        "| lock acquire failures |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        base = next(
            item for item in rows if item["strategy"] == row["strategy"] and item["instances"] == counts[0]
        )
        per = row["retries"] / max(row["ok"], 1)
        base_per = base["retries"] / max(base["ok"], 1)
        waits = row["lock_waits"] / max(row["ok"], 1)
        base_waits = base["lock_waits"] / max(base["ok"], 1)

        def ratio(value, reference):
            return (
                f"{value / reference:.2f}x"
                if reference
                else ("1.00x" if value == reference else "n/a (base 0)")
            )

        print(
            f"| {row['strategy']} | {row['instances']} | {ratio(row['throughput'], base['throughput'])} "
            f"| {ratio(row['p99'], base['p99'])} | {per:.2f} ({ratio(per, base_per)}) "
            f"| {waits:.2f} ({ratio(waits, base_waits)}) | {row['lock_failures']:.0f} |"
        )
    if options.json:
        with open(options.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
