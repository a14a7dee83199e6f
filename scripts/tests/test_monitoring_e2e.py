"""Tests of the pure parts of scripts/monitoring_e2e.py: the configurations it derives from the
shipped ones, Grafana's variables, how a panel's result is judged, the first-event bounds."""

import os
import sys

import pytest
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import monitoring_e2e as e2e  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def shipped(name):
    with open(os.path.join(ROOT, "Dashboards", name), encoding="utf-8") as f:
        return yaml.safe_load(f)


def test_prometheus_config_keeps_the_shipped_scrape_settings_and_rules_and_changes_only_addresses():
    original = shipped("prometheus.yml")
    targets = {"lockproof": "/w/serve.yml", "lockproof-runs": "/w/runs.yml"}
    derived = e2e.prometheus_config(original, "/repo/Dashboards/alerts.yml", targets, 29471)
    assert derived["global"]["scrape_interval"] == original["global"]["scrape_interval"]
    assert derived["global"]["external_labels"] == original["global"]["external_labels"]
    assert derived["global"]["evaluation_interval"] == "1s"
    assert derived["rule_files"] == ["/repo/Dashboards/alerts.yml"]
    assert derived["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:29471"]
    for job, original_job in zip(derived["scrape_configs"], original["scrape_configs"], strict=True):
        assert job["file_sd_configs"] == [{"files": [targets[job["job_name"]]]}]
        assert {k: v for k, v in job.items() if k != "file_sd_configs"} == {
            k: v for k, v in original_job.items() if k != "file_sd_configs"
        }
    assert original["rule_files"] == ["alerts.yml"], "the shipped configuration is not modified"


def test_prometheus_config_refuses_a_job_without_a_test_target():
    with pytest.raises(ValueError, match="lockproof-runs"):
        e2e.prometheus_config(shipped("prometheus.yml"), "r.yml", {"lockproof": "s.yml"}, 1)


def test_alertmanager_config_sends_every_webhook_to_the_receiver_and_keeps_the_routing():
    original = shipped("alertmanager.yml")
    derived = e2e.alertmanager_config(original, 29472)
    urls = [w["url"] for r in derived["receivers"] for w in r.get("webhook_configs", [])]
    assert urls == ["http://127.0.0.1:29472/page", "http://127.0.0.1:29472/ticket"]
    assert [r["matchers"] for r in derived["route"]["routes"]] == [
        r["matchers"] for r in original["route"]["routes"]
    ]
    assert [r["receiver"] for r in derived["route"]["routes"]] == ["page", "ticket"]
    for route in [derived["route"]] + derived["route"]["routes"]:
        assert (route["group_wait"], route["group_interval"]) == ("1s", "1s")


def test_grafana_intervals_and_substitution():
    intervals = e2e.grafana_intervals(1, 120)
    assert intervals == {"interval": 1, "rate_interval": 4, "range": 120}
    assert e2e.grafana_intervals(5, 3600)["rate_interval"] == 20
    assert e2e.grafana_intervals(1, 10000)["interval"] == 10
    expr = (
        'sum(rate(x{job=~"$job", instance=~"${instance}", case=~"$case"}[$__rate_interval]))'
        " + increase(y[$__range])"
    )
    assert (
        e2e.substitute(expr, intervals)
        == 'sum(rate(x{job=~".*", instance=~".*", case=~".*"}[4s])) + increase(y[120s])'
    )
    with pytest.raises(ValueError):
        e2e.substitute("rate(x[$__unknown])", intervals)


def test_every_shipped_dashboard_expression_substitutes():
    import json

    with open(os.path.join(ROOT, "Dashboards/grafana/lockproof.json"), encoding="utf-8") as f:
        queries = e2e.dashboard_queries(json.load(f))
    assert len(queries) >= 30
    for _, _, _, expr in queries:
        assert "$" not in e2e.substitute(expr, e2e.grafana_intervals(1, 60))


def test_classify_and_verdict():
    assert e2e.classify_range_result([]) == "empty"
    assert e2e.classify_range_result([{"values": [[1, "NaN"], [2, "NaN"]]}]) == "NaN only"
    assert e2e.classify_range_result([{"values": [[1, "NaN"]]}, {"values": [[1, "0"]]}]) == "zeros only"
    assert e2e.classify_range_result([{"values": [[1, "0"]]}, {"values": [[1, "3.5"]]}]) == "data"
    assert e2e.panel_verdict("Throughput.", "zeros only", "Throughput by case") == "FAIL"
    assert e2e.panel_verdict("Deadlocks.", "zeros only", "Deadlocks in range") == "ok (zeros)"
    assert e2e.classify_range_result([{"values": [[1, "+Inf"]]}]) == "data"
    assert e2e.panel_verdict("anything", "data") == "ok"
    assert (
        e2e.panel_verdict("Empty unless a scenario sets workload.connections.", "NaN only")
        == "empty by design"
    )
    assert e2e.panel_verdict("Lock waits.", "empty") == "FAIL"


def test_first_event_bounds_take_the_earliest_series_and_its_last_zero():
    matrix = [
        {"values": [[10, "0"], [11, "0"], [12, "5"], [13, "9"]]},
        {"values": [[10, "0"], [11, "3"]]},
        {"values": [[10, "0"], [11, "0"]]},
    ]
    assert e2e.first_event_bounds(matrix) == (10, 11)
    assert e2e.first_event_bounds([{"values": [[20, "7"]]}]) == (None, 20), "born above 0: no zero seen"
    assert e2e.first_event_bounds([{"values": [[1, "0"]]}]) == (None, None)


def test_timeline_table_prints_seconds_since_the_origin_and_dashes_for_what_did_not_happen():
    table = e2e.timeline_table(
        [
            {
                "alert": "A",
                "first_event_after": 100.0,
                "first_sample": 101.0,
                "firing": 102.5,
                "delivered": 103.0,
                "resolved": None,
            }
        ],
        origin=100.0,
    )
    assert table.splitlines()[2] == "| A | +0.0 s | +1.0 s | +2.5 s | +3.0 s | — |"


def test_duration_seconds():
    assert e2e.duration_seconds("1s") == 1
    assert e2e.duration_seconds("1m") == 60
    assert e2e.duration_seconds("500ms") == 0.5
    with pytest.raises(ValueError):
        e2e.duration_seconds("soon")


def test_printed_count():
    assert e2e.printed_count("168 operation(s) of case cart-quantity gave up") == 168
    assert e2e.printed_count("17.13 compensation transaction(s) failed") is None
    assert e2e.printed_count("") is None


def test_serve_gets_a_sibling_database_on_the_same_server():
    assert (
        e2e.sibling_database_url("postgresql://u:p%40w@127.0.0.1:25432/lockproof?connect_timeout=5", "other")
        == "postgresql://u:p%40w@127.0.0.1:25432/other?connect_timeout=5"
    )
    assert e2e.sibling_database_url("postgres://h/db", "other") == "postgres://h/other"
    assert (
        e2e.sibling_database_url("host=h port=1 dbname=db", "other") == "host=h port=1 dbname=db dbname=other"
    )


def test_a_port_something_listens_on_is_not_free_and_fails_the_wait():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert not e2e.port_is_free(port)
        try:
            e2e.wait_for_free_ports([port], bound=0.5)
        except e2e.Failure as failure:
            assert str(port) in str(failure)
        else:
            raise AssertionError("a held port passed the wait")
    assert e2e.port_is_free(port)


# ------------------------------------------------------------------ the idle file (make verify)
# make verify starts the scenarios once the idle file exists: before it, this test's lockproof
# runs and serve use the same PostgreSQL and Redis, and two runs on one database refuse each other.


def test_mark_idle_creates_the_file_once_and_clear_idle_removes_it(tmp_path):
    path = str(tmp_path / "idle")
    e2e.mark_idle(None)
    e2e.clear_idle(None)
    e2e.clear_idle(path)
    e2e.mark_idle(path)
    first = open(path, encoding="utf-8").read()
    assert float(first) > 0
    e2e.mark_idle(path)
    assert open(path, encoding="utf-8").read() == first
    assert os.listdir(tmp_path) == ["idle"], "no scratch file left"
    e2e.clear_idle(path)
    assert not os.path.exists(path)


def end_to_end(tmp_path, idle_file):
    args = e2e.argparse.Namespace(workdir=str(tmp_path / "work"), port_base=29470, idle_file=idle_file)
    os.makedirs(args.workdir)
    return e2e.EndToEnd(args)


def test_the_idle_file_appears_after_the_runs_the_kill_and_the_dashboard_and_before_the_alert_waits(
    tmp_path,
):
    idle_file = str(tmp_path / "idle")
    test = end_to_end(tmp_path, idle_file)
    events = []

    def note(what):
        events.append((what, os.path.exists(idle_file)))

    class Serve:
        def kill(self):
            note("kill serve")

        def wait(self, timeout):
            pass

    now = e2e.time.time()
    every_alert = [
        {"alertname": name, "status": status, "received_at": now, "annotations": {}}
        for name in e2e.PAGING_ALERTS + (e2e.TARGET_DOWN,)
        for status in ("firing", "resolved")
    ]
    test.serve = Serve()
    test.clean_started = now
    test.run_lockproof = lambda name, files, observe: (note("run"), observe(), (now, now, 0))[2]
    test.received = lambda: (note("received"), every_alert)[1]
    test.prometheus_alerts = lambda: []
    test.counter_first_event = lambda name, since: (now, now)
    test.check_pending_seen = lambda since: None
    test.first_down_sample = lambda killed: now
    test.dashboard_panels = lambda start, end: note("dashboard")
    test.check_delivered_annotations = lambda: None
    test.check_printed_counts = lambda: None

    test.failing_run_and_kill()

    kinds = [what for what, _ in events]
    assert kinds.index("run") < kinds.index("kill serve") < kinds.index("dashboard")
    assert [idle for what, idle in events if what in ("run", "kill serve", "dashboard")] == [False] * 3
    after_dashboard = events[kinds.index("dashboard") + 1 :]
    assert after_dashboard and all(idle for _, idle in after_dashboard), events


def test_run_removes_a_stale_idle_file_first_and_marks_idle_after_stopping_everything_on_a_failure(
    tmp_path, monkeypatch
):
    idle_file = tmp_path / "idle"
    idle_file.write_text("a previous run's\n")
    test = end_to_end(tmp_path, str(idle_file))
    events = []
    monkeypatch.setattr(
        e2e, "wait_for_free_ports", lambda ports: events.append(("ports", idle_file.exists()))
    )

    def start_monitoring():
        raise e2e.Failure("Prometheus is ready: not within 60 s")

    test.write_configs = lambda: events.append(("configs", idle_file.exists()))
    test.start_monitoring = start_monitoring
    test.processes.stop_all = lambda: events.append(("stop all", idle_file.exists()))

    assert test.run() == 1
    assert events == [("ports", False), ("configs", False), ("stop all", False)]
    assert idle_file.exists()
    assert test.failures == ["Prometheus is ready: not within 60 s"]


def test_main_hands_the_idle_file_to_the_test(tmp_path, monkeypatch):
    seen = []

    class Recorder:
        def __init__(self, args):
            seen.append(args.idle_file)

        def run(self):
            return 0

    monkeypatch.setattr(e2e, "EndToEnd", Recorder)
    monkeypatch.setattr(e2e.signal, "signal", lambda number, handler: None)
    argv = ["--lockproof", sys.executable, "--workdir", str(tmp_path)]
    assert e2e.main(argv + ["--idle-file", "/x/idle"]) == 0
    assert e2e.main(argv) == 0
    assert seen == ["/x/idle", None]
