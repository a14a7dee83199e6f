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
