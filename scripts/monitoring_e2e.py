#!/usr/bin/env python3
"""The monitoring loop end to end: real Prometheus, Alertmanager, a webhook receiver, LockProof.

Run by scripts/check-monitoring.sh (make verify, make check-monitoring), with PostgreSQL and Redis
named by LOCKPROOF_DATABASE_URL / LOCKPROOF_REDIS_URL:

    python3 scripts/monitoring_e2e.py --lockproof .build/release/lockproof --workdir .run/monitoring

It starts Debian's `prometheus` and `prometheus-alertmanager` with configurations derived from the
shipped Dashboards/prometheus.yml and Dashboards/alertmanager.yml (same rules file, same scrape
settings; only the ports, the file_sd files, the receiver address and shorter evaluation and
grouping intervals differ), scripts/alert_webhook_receiver.py, and `lockproof serve` (job
lockproof). Then, through the HTTP APIs of Prometheus, Alertmanager and the receiver:

1. a clean scenario (Tests/Monitoring/clean.yaml) leaves every alert inactive;
2. a scenario that exhausts retries and the shipped compensation-failure scenario make
   LockProofRetriesExhausted and LockProofCompensationFailed fire and reach the receiver within
   a bound, and resolve after the run has gone, their last description printing the run's own
   counts; lockproof_compensations_pending went above 0 while compensations were pending;
3. killing `lockproof serve` makes LockProofTargetDown fire and reach the receiver;
4. every PromQL expression of Dashboards/grafana/lockproof.json, its variables substituted as
   Grafana would, returns data over the runs, unless its panel's description says it may be
   empty ("Empty unless ...").

It writes the alert timeline and the dashboard verdicts to WORKDIR/monitoring-report.md (and
.json) and prints them. With --idle-file PATH it creates PATH once only its last waits remain
(LockProofTargetDown firing, the paging alerts resolving: about a minute on Prometheus and
Alertmanager alone, no lockproof process left, PostgreSQL and Redis no longer used), or once it
has stopped everything after a failure: `make verify` starts the scenarios then, so that the
wait overlaps them. Every wait is bounded; every process it starts is stopped when it ends,
however it ends, and listed in WORKDIR/pids for the calling script's trap. Ports: six from
LOCKPROOF_MONITORING_PORT_BASE (default 29470), away from the suite's PostgreSQL and Redis.
Exit status 0 when every assertion held, 1 otherwise, 2 on bad usage.
"""

import argparse
import copy
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DEFAULT_PORT_BASE = 29470
PAGING_ALERTS = ("LockProofRetriesExhausted", "LockProofCompensationFailed")
TARGET_DOWN = "LockProofTargetDown"
# The panels that may legitimately show nothing say so in their description with this phrase.
MAY_BE_EMPTY = "Empty unless"
# Families whose first sample above 0 dates the first event of each paging alert.
ALERT_COUNTERS = {
    "LockProofRetriesExhausted": 'lockproof_retry_exhausted_total{job="lockproof-runs"}',
    "LockProofCompensationFailed": 'lockproof_compensations_total{job="lockproof-runs", outcome="failed"}',
}
# The run report's counter (ScenarioResult JSON "counters") behind each paging alert's description.
REPORT_COUNTERS = {
    "LockProofRetriesExhausted": "retry_exhausted",
    "LockProofCompensationFailed": "compensations_failed",
}
# Bounds, in seconds.
PORTS_FREE_BOUND = 20
READY_BOUND = 60
FIRING_BOUND = 20  # after the run exits: a paging alert fired and was delivered
RESOLVED_BOUND = 120  # after the run exits: 1 minute of grace, evaluation and grouping
TARGET_DOWN_BOUND = 60  # after the kill: the 30 s `for:`, evaluation and grouping
CLEAN_SETTLE = 5  # after the clean run exits: evaluations that must stay inactive
RUN_BOUND = 240  # one lockproof run process


class Failure(Exception):
    """An assertion of the end-to-end test that did not hold."""


def mark_idle(path):
    """Creates `path` (its content: the time) unless it exists; nothing when `path` is None. Through
    a rename, so a caller polling for it never sees it half written."""
    if path is None or os.path.exists(path):
        return
    scratch = f"{path}.{os.getpid()}.tmp"
    with open(scratch, "w", encoding="utf-8") as f:
        f.write(f"{time.time():.3f}\n")
    os.replace(scratch, path)


def clear_idle(path):
    """Removes a previous run's idle file, which would tell the caller it may go on at once."""
    if path is not None and os.path.exists(path):
        os.remove(path)


# ------------------------------------------------------------------ configurations (pure)


def port_map(base):
    return {
        "prometheus": base,
        "alertmanager": base + 1,
        "receiver": base + 2,
        "serve": base + 3,
        "runs": base + 4,
        "alertmanager_cluster": base + 5,
    }


JOB_PORTS = {"lockproof": "serve", "lockproof-runs": "runs"}


def prometheus_config(shipped, rules_path, target_files, alertmanager_port, evaluation_interval="1s"):
    """The shipped Prometheus configuration with this test's rules path, file_sd files and
    Alertmanager, and a shorter evaluation interval; scrape settings untouched."""
    config = copy.deepcopy(shipped)
    config.setdefault("global", {})["evaluation_interval"] = evaluation_interval
    config["rule_files"] = [rules_path]
    config["alerting"] = {
        "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{alertmanager_port}"]}]}]
    }
    for job in config.get("scrape_configs", []):
        name = job["job_name"]
        if name not in target_files:
            raise ValueError(f"scrape job {name!r} of the shipped configuration has no test target")
        job.pop("static_configs", None)
        job["file_sd_configs"] = [{"files": [target_files[name]]}]
    return config


def alertmanager_config(shipped, receiver_port, group_wait="1s", group_interval="1s"):
    """The shipped Alertmanager configuration with every webhook sent to this test's receiver
    (same paths) and short grouping delays, so that a notification leaves within a second."""
    config = copy.deepcopy(shipped)

    def shorten(route):
        route["group_wait"] = group_wait
        route["group_interval"] = group_interval
        for child in route.get("routes", []):
            shorten(child)

    shorten(config["route"])
    for receiver in config.get("receivers", []):
        for webhook in receiver.get("webhook_configs", []):
            path = urllib.parse.urlsplit(webhook["url"]).path or "/"
            webhook["url"] = f"http://127.0.0.1:{receiver_port}{path}"
    return config


# ------------------------------------------------------------------ Grafana expressions (pure)


def duration_seconds(text):
    """'1s', '15s', '1m' -> seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for unit in sorted(units, key=len, reverse=True):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * units[unit]
    raise ValueError(f"not a duration: {text!r}")


def grafana_intervals(scrape_interval, range_seconds, max_data_points=1000):
    """$__interval, $__rate_interval, $__range in seconds, as Grafana computes them for a
    Prometheus datasource whose timeInterval is `scrape_interval`: the interval is the range
    over the data points, at least timeInterval; the rate interval is
    max($__interval + scrape interval, 4 * scrape interval)."""
    interval = max(scrape_interval, range_seconds / max_data_points)
    rate_interval = max(interval + scrape_interval, 4 * scrape_interval)
    return {"interval": interval, "rate_interval": rate_interval, "range": range_seconds}


def seconds_text(seconds):
    return f"{int(math.ceil(seconds))}s"


def substitute(expr, intervals):
    """A dashboard expression with Grafana's variables replaced: $job, $instance and $case as
    'All' (allValue .*), the interval variables as durations."""
    values = {
        "$__rate_interval": seconds_text(intervals["rate_interval"]),
        "$__interval": seconds_text(intervals["interval"]),
        "$__range": seconds_text(intervals["range"]),
        "$job": ".*",
        "$instance": ".*",
        "$case": ".*",
    }
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name[1:] + "}", values[name]).replace(name, values[name])
    if "$" in expr:
        raise ValueError(f"unknown variable left in {expr!r}")
    return expr


def dashboard_queries(dashboard):
    """(panel title, description, refId, expr) of every query of every panel, rows included."""
    queries = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                queries.append(
                    (
                        panel.get("title", ""),
                        panel.get("description", ""),
                        target.get("refId", ""),
                        target.get("expr", ""),
                    )
                )
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    return queries


def classify_range_result(result):
    """'data' when a series has a number other than 0 (±Inf counts), 'zeros only' when every
    number is 0, 'NaN only' when every value is NaN, 'empty' when there is no series."""
    if not result:
        return "empty"
    values = [value.lower() for series in result for _, value in series.get("values", [])]
    numbers = [value for value in values if value != "nan"]
    if not numbers:
        return "NaN only"
    return "data" if any(float(value) != 0 for value in numbers) else "zeros only"


# Panels the failing run drives (charges that exhaust retries, payments whose compensations fail):
# a line flat at 0 there is the defect issue 19 found ("Throughput by case reads 0").
MUST_MOVE = {
    "Throughput by case",
    "Operation rate by outcome",
    "Duration p50 / p95 / p99",
    "Retry attempts per second",
    "Retries exhausted in range",
    "Compensations by outcome",
    "Failed compensations in range",
}


def panel_verdict(description, outcome, title=""):
    """ok / zeros (a panel that may read 0) / empty by design / FAIL for one query's outcome."""
    if outcome == "data":
        return "ok"
    if outcome == "zeros only":
        return "FAIL" if title in MUST_MOVE else "ok (zeros)"
    if MAY_BE_EMPTY in description:
        return "empty by design"
    return "FAIL"


# ------------------------------------------------------------------ samples and timeline (pure)


def first_event_bounds(matrix):
    """From raw samples of a counter's series ([{values: [[t, v], ...]}]): the time of the last
    sample at 0 before the first one above 0 (the first event happened after it) and the time
    of that first sample above 0. (None, None) when no sample is above 0."""
    first_positive, last_zero = None, None
    for series in matrix:
        values = [(float(t), float(v)) for t, v in series.get("values", [])]
        for index, (timestamp, value) in enumerate(values):
            if value > 0:
                if first_positive is None or timestamp < first_positive:
                    first_positive = timestamp
                    last_zero = values[index - 1][0] if index > 0 else None
                break
    return last_zero, first_positive


def printed_count(description):
    """The count a counter alert's description starts with ('168 operation(s) ...'), or None."""
    head = description.split(" ", 1)[0]
    return int(head) if head.isdigit() else None


def timeline_table(rows, origin):
    """Markdown table of the timeline rows, times in seconds since `origin`."""
    columns = ["alert", "first event (after)", "first sample", "firing", "delivered", "resolved"]
    keys = ["first_event_after", "first_sample", "firing", "delivered", "resolved"]

    def cell(value):
        return "—" if value is None else f"{value - origin:+.1f} s"

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join([row["alert"]] + [cell(row.get(key)) for key in keys]) + " |")
    return "\n".join(lines)


# ------------------------------------------------------------------ HTTP


def http_json(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())


def prometheus_api(base, path, **params):
    url = f"{base}/api/v1/{path}?" + urllib.parse.urlencode(params)
    body = http_json(url, timeout=10)
    if body.get("status") != "success":
        raise Failure(f"Prometheus {path} {params}: {body}")
    return body["data"]


def wait_until(what, bound, probe, interval=0.25):
    """Calls probe() until it returns something truthy (returned), at most `bound` seconds."""
    deadline = time.monotonic() + bound
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = probe()
            if value:
                return value
        except (OSError, ValueError, urllib.error.URLError) as error:
            last_error = error
        time.sleep(interval)
    raise Failure(f"{what}: not within {bound} s" + (f" (last error: {last_error})" if last_error else ""))


def port_is_free(port):
    """Whether 127.0.0.1:port can be bound now (nothing listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def wait_for_free_ports(ports, bound=PORTS_FREE_BOUND):
    """A port still held (a previous run's server shutting down, another program) would send this
    test's queries to someone else's Prometheus: wait a little, then fail naming the ports."""
    wait_until(
        f"ports {', '.join(str(p) for p in sorted(ports))} free (LOCKPROOF_MONITORING_PORT_BASE moves them)",
        bound,
        lambda: all(port_is_free(p) for p in ports),
    )


# ------------------------------------------------------------------ the serve database

SERVE_DATABASE = "lockproof_monitoring_serve"


def sibling_database_url(url, name):
    """The same server and credentials as `url` (a postgresql:// URL or a key=value conninfo),
    database `name`. serve gets a database of its own: it and a run exclude each other on one
    database (README, "Data safety"), and this test runs both at once."""
    if url.startswith(("postgresql://", "postgres://")):
        parts = urllib.parse.urlsplit(url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))
    # In a conninfo string a later keyword wins.
    return f"{url} dbname={name}"


def create_database(url, name):
    """CREATE DATABASE `name` over `url` unless it exists (name: a fixed identifier, not input)."""
    exists = subprocess.run(
        [
            "psql",
            "-X",
            "-q",
            "-t",
            "-A",
            "-d",
            url,
            "-c",
            f"SELECT 1 FROM pg_database WHERE datname = '{name}'",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    if exists != "1":
        subprocess.run(
            ["psql", "-X", "-q", "-d", url, "-c", f'CREATE DATABASE "{name}"'],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )


# ------------------------------------------------------------------ processes


class Processes:
    """Every process started here, stopped however the test ends; pids listed for the trap."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.started = []

    def start(self, name, argv, env=None):
        log = open(os.path.join(self.workdir, f"{name}.log"), "wb")
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT, start_new_session=True
        )
        log.close()
        self.started.append((name, process))
        with open(os.path.join(self.workdir, "pids"), "a", encoding="utf-8") as pids:
            pids.write(f"{process.pid}\n")
        return process

    def stop_all(self):
        for _, process in reversed(self.started):
            if process.poll() is None:
                process.terminate()
        for _, process in reversed(self.started):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


# ------------------------------------------------------------------ the test


class EndToEnd:
    def __init__(self, args):
        self.args = args
        self.workdir = os.path.abspath(args.workdir)
        self.ports = port_map(args.port_base)
        self.prometheus = f"http://127.0.0.1:{self.ports['prometheus']}"
        self.alertmanager = f"http://127.0.0.1:{self.ports['alertmanager']}"
        self.receiver = f"http://127.0.0.1:{self.ports['receiver']}"
        self.processes = Processes(self.workdir)
        self.idle_file = os.path.abspath(args.idle_file) if getattr(args, "idle_file", None) else None
        self.failures = []
        self.report = {"timeline": [], "dashboard": [], "clean": {}, "failures": self.failures}

    def check(self, condition, message):
        if not condition:
            self.failures.append(message)
            print(f"monitoring-e2e: FAIL {message}", flush=True)
        return condition

    # ---------------------------------------------------------- set-up
    def write_configs(self):
        with open(os.path.join(ROOT, "Dashboards/prometheus.yml"), encoding="utf-8") as f:
            shipped_prometheus = yaml.safe_load(f)
        with open(os.path.join(ROOT, "Dashboards/alertmanager.yml"), encoding="utf-8") as f:
            shipped_alertmanager = yaml.safe_load(f)
        target_files = {}
        for job, port_name in JOB_PORTS.items():
            path = os.path.join(self.workdir, f"targets-{job}.yml")
            with open(path, "w", encoding="utf-8") as f:
                yaml.safe_dump([{"targets": [f"127.0.0.1:{self.ports[port_name]}"]}], f)
            target_files[job] = path
        rules = os.path.abspath(self.args.rules or os.path.join(ROOT, "Dashboards/alerts.yml"))
        prometheus = prometheus_config(shipped_prometheus, rules, target_files, self.ports["alertmanager"])
        if self.args.runs_scrape_interval:
            for job in prometheus["scrape_configs"]:
                if job["job_name"] == "lockproof-runs":
                    job["scrape_interval"] = job["scrape_timeout"] = self.args.runs_scrape_interval
        alertmanager = alertmanager_config(shipped_alertmanager, self.ports["receiver"])
        self.prometheus_config_path = os.path.join(self.workdir, "prometheus.yml")
        self.alertmanager_config_path = os.path.join(self.workdir, "alertmanager.yml")
        with open(self.prometheus_config_path, "w", encoding="utf-8") as f:
            yaml.safe_dump(prometheus, f, sort_keys=False)
        with open(self.alertmanager_config_path, "w", encoding="utf-8") as f:
            yaml.safe_dump(alertmanager, f, sort_keys=False)
        self.external_labels = prometheus.get("global", {}).get("external_labels", {})

    def start_monitoring(self):
        self.processes.start(
            "receiver",
            [
                sys.executable,
                os.path.join(ROOT, "scripts/alert_webhook_receiver.py"),
                "--port",
                str(self.ports["receiver"]),
                "--log",
                os.path.join(self.workdir, "received.jsonl"),
            ],
        )
        self.processes.start(
            "alertmanager",
            [
                "prometheus-alertmanager",
                f"--config.file={self.alertmanager_config_path}",
                f"--storage.path={os.path.join(self.workdir, 'alertmanager-data')}",
                f"--web.listen-address=127.0.0.1:{self.ports['alertmanager']}",
                f"--cluster.listen-address=127.0.0.1:{self.ports['alertmanager_cluster']}",
            ],
        )
        self.processes.start(
            "prometheus",
            [
                "prometheus",
                f"--config.file={self.prometheus_config_path}",
                f"--storage.tsdb.path={os.path.join(self.workdir, 'prometheus-data')}",
                f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}",
            ],
        )

        def ready(url):
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    return response.status == 200
            except (OSError, urllib.error.URLError):
                return False

        wait_until("the webhook receiver answers", READY_BOUND, lambda: ready(self.receiver + "/healthz"))
        wait_until("Alertmanager is ready", READY_BOUND, lambda: ready(self.alertmanager + "/-/ready"))
        wait_until("Prometheus is ready", READY_BOUND, lambda: ready(self.prometheus + "/-/ready"))

    def start_serve(self):
        database_url = os.environ["LOCKPROOF_DATABASE_URL"]
        create_database(database_url, SERVE_DATABASE)
        environment = dict(
            os.environ, LOCKPROOF_DATABASE_URL=sibling_database_url(database_url, SERVE_DATABASE)
        )
        self.serve = self.processes.start(
            "serve",
            [
                self.args.lockproof,
                "serve",
                "--metrics-address",
                f"127.0.0.1:{self.ports['serve']}",
                "--pending-interval",
                "1",
            ],
            env=environment,
        )
        wait_until(
            "Prometheus scrapes lockproof serve (up == 1)",
            READY_BOUND,
            lambda: any(
                float(s["value"][1]) == 1
                for s in prometheus_api(self.prometheus, "query", query='up{job="lockproof"}')["result"]
            ),
        )

    # ---------------------------------------------------------- observations
    def prometheus_alerts(self):
        return [
            a
            for a in prometheus_api(self.prometheus, "alerts")["alerts"]
            if a["labels"].get("alertname", "").startswith("LockProof")
        ]

    def alertmanager_alerts(self):
        return [
            a
            for a in http_json(self.alertmanager + "/api/v2/alerts")
            if a["labels"].get("alertname", "").startswith("LockProof")
        ]

    def received(self):
        return http_json(self.receiver + "/alerts")

    def run_lockproof(self, name, scenario_files, observe):
        """Runs scenarios in one `lockproof run` process (bounded), calling observe() about every
        0.25 s while it runs; returns (start, exit time, exit status)."""
        argv = [
            self.args.lockproof,
            "run",
            *scenario_files,
            "--quiet",
            "--metrics-address",
            f"127.0.0.1:{self.ports['runs']}",
            "--report-dir",
            os.path.join(self.workdir, f"reports-{name}"),
            *self.args.run_arg,
        ]
        started = time.time()
        process = self.processes.start(f"run-{name}", argv)
        deadline = time.monotonic() + RUN_BOUND
        while process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise Failure(f"lockproof run {name}: still running after {RUN_BOUND} s")
            observe()
            time.sleep(0.25)
        ended = time.time()
        with open(os.path.join(self.workdir, f"run-{name}.log"), encoding="utf-8", errors="replace") as log:
            for line in log:
                if line.startswith("metrics: "):
                    print(f"monitoring-e2e: {name}: {line.strip()}", flush=True)
        self.check(
            process.returncode == 0,
            f"lockproof run {name} exited {process.returncode} (see {self.workdir}/run-{name}.log)",
        )
        return started, ended, process.returncode

    # ---------------------------------------------------------- 1. clean
    def clean_run(self):
        seen = set()

        def observe():
            for alert in self.prometheus_alerts():
                seen.add((alert["labels"]["alertname"], alert["state"]))

        started, ended, _ = self.run_lockproof(
            "clean", [os.path.join(ROOT, "Tests/Monitoring/clean.yaml")], observe
        )
        settle = time.monotonic() + CLEAN_SETTLE
        while time.monotonic() < settle:
            observe()
            time.sleep(0.25)
        alertmanager = {a["labels"]["alertname"] for a in self.alertmanager_alerts()}
        received = {r["alertname"] for r in self.received()}
        self.report["clean"] = {
            "prometheus": sorted(map(list, seen)),
            "alertmanager": sorted(alertmanager),
            "receiver": sorted(received),
            "seconds": round(ended - started, 1),
        }
        self.check(not seen, f"clean run: Prometheus had alerts pending or firing: {sorted(seen)}")
        self.check(not alertmanager, f"clean run: Alertmanager had alerts: {sorted(alertmanager)}")
        self.check(not received, f"clean run: the receiver got alerts: {sorted(received)}")
        print(
            f"monitoring-e2e: clean run: {len(seen)} alerts pending or firing in Prometheus, "
            f"{len(alertmanager)} in Alertmanager, {len(received)} received",
            flush=True,
        )
        return started

    # ---------------------------------------------------------- 2. and 3. failing runs, kill
    def failing_run_and_kill(self):
        firing_seen = {}

        def observe():
            now = time.time()
            for alert in self.prometheus_alerts():
                if alert["state"] == "firing":
                    firing_seen.setdefault(alert["labels"]["alertname"], now)

        files = [
            os.path.join(ROOT, "Tests/Monitoring/retries-exhausted.yaml"),
            os.path.join(ROOT, "Scenarios/fault-compensation-failure-payment-seed.yaml"),
        ]
        started, ended, _ = self.run_lockproof("failing", files, observe)
        # The target-down alert: the serve process dies without a word.
        killed = time.time()
        self.serve.kill()
        self.serve.wait(timeout=10)

        def delivered(alertname, status):
            times = [
                r["received_at"]
                for r in self.received()
                if r["alertname"] == alertname and r["status"] == status
            ]
            return min(times) if times else None

        def all_delivered(names, status):
            observe()
            return all(delivered(name, status) for name in names)

        try:
            wait_until(
                "LockProofRetriesExhausted and LockProofCompensationFailed fired and were delivered",
                FIRING_BOUND,
                lambda: all_delivered(PAGING_ALERTS, "firing"),
            )
        except Failure as failure:
            self.check(False, str(failure))
        # Samples while the run's series are still within Prometheus' reach.
        first = {name: self.counter_first_event(name, started) for name in PAGING_ALERTS}
        self.check_pending_seen(started)
        first[TARGET_DOWN] = (killed, self.first_down_sample(killed))
        self.dashboard_panels(self.clean_started, time.time())
        # From here on only Prometheus, Alertmanager and the receiver are asked (serve is dead, the
        # runs have exited): the caller may start work of its own on PostgreSQL and Redis.
        self.mark_idle("only the waits on the alerts remain")
        try:
            wait_until(
                "LockProofTargetDown fired and was delivered after the kill",
                max(0.0, killed + TARGET_DOWN_BOUND - time.time()),
                lambda: all_delivered([TARGET_DOWN], "firing"),
            )
        except Failure as failure:
            self.check(False, str(failure))
        try:
            wait_until(
                "the paging alerts resolved and the receiver was told",
                max(0.0, ended + RESOLVED_BOUND - time.time()),
                lambda: all_delivered(PAGING_ALERTS, "resolved"),
            )
        except Failure as failure:
            self.check(False, str(failure))

        for name in PAGING_ALERTS + (TARGET_DOWN,):
            event_after, sample = first[name]
            row = {
                "alert": name,
                "first_event_after": event_after,
                "first_sample": sample,
                "firing": firing_seen.get(name),
                "delivered": delivered(name, "firing"),
                "resolved": delivered(name, "resolved"),
            }
            self.report["timeline"].append(row)
            self.check(row["firing"] is not None, f"{name}: never seen firing in Prometheus")
            self.check(row["delivered"] is not None, f"{name}: never delivered to the receiver")
        for name in PAGING_ALERTS:
            self.check(delivered(name, "resolved") is not None, f"{name}: resolution never delivered")
        self.check_delivered_annotations()
        self.check_printed_counts()
        self.report["run"] = {"started": started, "ended": ended, "killed": killed}
        return started, ended, killed

    def counter_first_event(self, alertname, since):
        window = seconds_text(time.time() - since + 5)
        matrix = prometheus_api(self.prometheus, "query", query=f"{ALERT_COUNTERS[alertname]}[{window}]")[
            "result"
        ]
        last_zero, first_positive = first_event_bounds(matrix)
        self.check(
            first_positive is not None, f"{alertname}: Prometheus has no sample of its counter above 0"
        )
        return last_zero, first_positive

    def check_pending_seen(self, since):
        """`run` counts pending compensations while it runs, as serve does: Prometheus saw the
        gauge above 0 during the compensation-failure scenario (whose recovery ends it at 0)."""
        window = seconds_text(time.time() - since + 5)
        result = prometheus_api(
            self.prometheus,
            "query",
            query=f'max_over_time(lockproof_compensations_pending{{job="lockproof-runs"}}[{window}])',
        )["result"]
        peak = max((float(series["value"][1]) for series in result), default=None)
        self.report["pending_peak"] = peak
        self.check(
            peak is not None and peak > 0,
            f"lockproof_compensations_pending of the run never went above 0 in Prometheus (peak {peak})",
        )

    def first_down_sample(self, killed):
        def probe():
            window = seconds_text(time.time() - killed + 2)
            matrix = prometheus_api(self.prometheus, "query", query=f'up{{job="lockproof"}}[{window}]')[
                "result"
            ]
            downs = [
                float(t)
                for series in matrix
                for t, v in series["values"]
                if float(v) == 0 and float(t) >= killed
            ]
            return min(downs) if downs else None

        try:
            return wait_until("Prometheus saw serve down (up == 0)", 15, probe)
        except Failure as failure:
            self.check(False, str(failure))
            return None

    def check_delivered_annotations(self):
        base = self.external_labels.get("runbook_base_url")
        for record in self.received():
            if record["status"] != "firing":
                continue
            url = record["annotations"].get("runbook_url", "")
            self.check(
                base and url.startswith(base + "#"),
                f"{record['alertname']}: runbook_url {url!r} is not absolute under {base!r}",
            )
            self.check(
                "{{" not in json.dumps(record["annotations"]),
                f"{record['alertname']}: an annotation kept a template: {record['annotations']}",
            )

    def check_printed_counts(self):
        """The description of a paging alert's last notification (resolved: the last evaluation,
        which saw the final scrape) prints the count the run itself reports, not an extrapolation."""
        reports = os.path.join(self.workdir, "reports-failing")
        counted = {name: 0 for name in REPORT_COUNTERS}
        for file in os.listdir(reports):
            if file.endswith(".json"):
                with open(os.path.join(reports, file), encoding="utf-8") as f:
                    counters = json.load(f).get("counters", {})
                for name, key in REPORT_COUNTERS.items():
                    counted[name] += counters.get(key, 0)
        for name in PAGING_ALERTS:
            resolved = [r for r in self.received() if r["alertname"] == name and r["status"] == "resolved"]
            printed = printed_count(resolved[-1]["annotations"].get("description", "")) if resolved else None
            self.report.setdefault("printed_counts", {})[name] = {
                "description": printed,
                "run report": counted[name],
            }
            self.check(
                printed == counted[name],
                f"{name}: the description printed {printed}, the run reported {counted[name]}",
            )

    # ---------------------------------------------------------- 4. dashboard
    def dashboard_panels(self, start, end):
        with open(os.path.join(ROOT, "Dashboards/grafana/lockproof.json"), encoding="utf-8") as f:
            dashboard = json.load(f)
        with open(
            os.path.join(ROOT, "Dashboards/grafana/provisioning/datasources.yml"), encoding="utf-8"
        ) as f:
            datasources = yaml.safe_load(f)["datasources"]
        scrape = duration_seconds(
            self.args.datasource_time_interval or datasources[0]["jsonData"]["timeInterval"]
        )
        start -= 5
        intervals = grafana_intervals(scrape, end - start)
        for title, description, ref, expr in dashboard_queries(dashboard):
            query = substitute(expr, intervals)
            try:
                result = prometheus_api(
                    self.prometheus,
                    "query_range",
                    query=query,
                    start=f"{start:.3f}",
                    end=f"{end:.3f}",
                    step=seconds_text(intervals["interval"]),
                )["result"]
                outcome = classify_range_result(result)
            except (Failure, urllib.error.URLError, OSError) as error:
                outcome = f"error: {error}"
            verdict = panel_verdict(description, outcome, title)
            self.report["dashboard"].append(
                {"panel": title, "ref": ref, "outcome": outcome, "verdict": verdict, "query": query}
            )
            self.check(verdict != "FAIL", f"dashboard panel {title!r} {ref}: {outcome}: {query}")

    # ---------------------------------------------------------- report
    def write_report(self):
        origin = self.report.get("run", {}).get("started", time.time())
        lines = ["# Monitoring end-to-end report", ""]
        lines.append(
            f"Alert timeline, seconds since the failing run started (it exited at "
            f"{self.report.get('run', {}).get('ended', origin) - origin:+.1f} s; serve was killed at "
            f"{self.report.get('run', {}).get('killed', origin) - origin:+.1f} s). "
            "'first event (after)': the last sample at 0 before the first one above 0 "
            "(for LockProofTargetDown: the kill)."
        )
        lines += ["", timeline_table(self.report["timeline"], origin), ""]
        counts = {}
        for panel in self.report["dashboard"]:
            counts[panel["verdict"]] = counts.get(panel["verdict"], 0) + 1
        summary = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("ok", "empty by design", "FAIL"))
        lines.append(f"Dashboard: {len(self.report['dashboard'])} expressions: {summary}.")
        for panel in self.report["dashboard"]:
            if panel["verdict"] != "ok":
                lines.append(f"- {panel['verdict']}: {panel['panel']} {panel['ref']} ({panel['outcome']})")
        for name, counts in self.report.get("printed_counts", {}).items():
            lines.append(
                f"{name}: its last notification's description printed {counts['description']}, "
                f"the run reported {counts['run report']}."
            )
        lines.append(
            f"lockproof_compensations_pending of the failing run peaked at {self.report.get('pending_peak')} "
            "in Prometheus."
        )
        clean = self.report["clean"]
        lines += [
            "",
            (
                f"Clean run: {clean.get('seconds')} s, alerts pending or firing in Prometheus "
                f"{clean.get('prometheus')}, in Alertmanager {clean.get('alertmanager')}, received "
                f"{clean.get('receiver')}."
            ),
            "",
        ]
        lines.append(
            "Result: "
            + ("PASS" if not self.failures else "FAIL\n" + "\n".join(f"- {f}" for f in self.failures))
        )
        text = "\n".join(lines) + "\n"
        with open(os.path.join(self.workdir, "monitoring-report.md"), "w", encoding="utf-8") as f:
            f.write(text)
        with open(os.path.join(self.workdir, "monitoring-report.json"), "w", encoding="utf-8") as f:
            json.dump(self.report, f, indent=2, default=str)
        print(text, flush=True)

    def mark_idle(self, why):
        if self.idle_file is not None and not os.path.exists(self.idle_file):
            mark_idle(self.idle_file)
            print(f"monitoring-e2e: {why}: created {self.idle_file}", flush=True)

    def run(self):
        began = time.monotonic()
        clear_idle(self.idle_file)
        try:
            wait_for_free_ports(self.ports.values())
            self.write_configs()
            self.start_monitoring()
            self.start_serve()
            self.clean_started = self.clean_run()
            self.failing_run_and_kill()
        except Failure as failure:
            self.check(False, str(failure))
        finally:
            self.processes.stop_all()
            # A test that failed before its alert waits is idle now too: nothing it started is left.
            self.mark_idle("everything it started is stopped")
        self.report["seconds"] = round(time.monotonic() - began, 1)
        self.write_report()
        print(
            f"monitoring-e2e: {self.report['seconds']} s, {'PASS' if not self.failures else 'FAIL'}",
            flush=True,
        )
        return 0 if not self.failures else 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lockproof", required=True, help="the lockproof binary")
    parser.add_argument(
        "--workdir", required=True, help="a folder for configurations, data, logs and the report"
    )
    parser.add_argument(
        "--port-base",
        type=int,
        default=int(os.environ.get("LOCKPROOF_MONITORING_PORT_BASE", DEFAULT_PORT_BASE)),
        help=f"six ports from here (default LOCKPROOF_MONITORING_PORT_BASE or {DEFAULT_PORT_BASE})",
    )
    parser.add_argument(
        "--runs-scrape-interval",
        help="override the shipped scrape interval of job lockproof-runs "
        "(to measure other settings; the test itself uses the shipped one)",
    )
    parser.add_argument(
        "--rules", help="another alert rules file than Dashboards/alerts.yml (to measure other rules)"
    )
    parser.add_argument(
        "--datasource-time-interval",
        help="override the Grafana datasource's timeInterval "
        "(with --runs-scrape-interval, to measure other settings)",
    )
    parser.add_argument(
        "--run-arg",
        action="append",
        default=[],
        help="an extra argument for every `lockproof run` (repeatable)",
    )
    parser.add_argument(
        "--idle-file",
        help="create this file once only the alert waits remain (no lockproof process, PostgreSQL "
        "and Redis no longer used), or once everything is stopped after a failure; removed at start",
    )
    args = parser.parse_args(argv)
    if not os.access(args.lockproof, os.X_OK):
        parser.error(f"--lockproof {args.lockproof}: not an executable")
    if not 1024 <= args.port_base <= 65535 - 6:
        parser.error(f"--port-base {args.port_base}: expected 1024 to 65529")
    os.makedirs(args.workdir, exist_ok=True)
    # SIGTERM/SIGINT end the test through the finally that stops every process.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda signum, frame: sys.exit(128 + signum))
    return EndToEnd(args).run()


if __name__ == "__main__":
    sys.exit(main())
