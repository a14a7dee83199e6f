"""Tests of check_dashboards.py and check-dashboards.sh on the small operator files in
fixtures/dashboards (a catalog of three families, one alert with its tests, a four-panel dashboard),
and on copies of them broken one way at a time. promtool is real (scripts/install-deps.sh)."""

import json
import os
import shutil
import subprocess

import pytest

import check_dashboards as cd

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "dashboards")


def read(root, path):
    with open(os.path.join(root, path), encoding="utf-8") as f:
        return f.read()


def write(root, path, text):
    with open(os.path.join(root, path), "w", encoding="utf-8") as f:
        f.write(text)


@pytest.fixture
def root(tmp_path):
    """A copy of the fixture to break."""
    copy = tmp_path / "root"
    shutil.copytree(FIXTURE, copy)
    return str(copy)


def catalog(root=FIXTURE):
    return cd.Catalog(read(root, cd.CATALOG))


def dashboard(root=FIXTURE):
    return json.loads(read(root, cd.DASH))


def dashboard_problems(dash, cat=None):
    problems, _, _ = cd.check_dashboard(json.dumps(dash), cat or catalog())
    return problems


def panel(dash, panel_id):
    return next(p for p in cd.walk(dash["panels"]) if p["id"] == panel_id)


def check_dashboards_sh(root):
    return subprocess.run(["bash", os.path.join(HERE, "check-dashboards.sh"), root],
                          capture_output=True, text=True, check=False)


# ------------------------------------------------------------------ the good fixture

def test_the_fixture_passes_every_check(capsys):
    assert cd.main(["--root", FIXTURE]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line[:4] for line in out] == ["ok  "] * 3
    assert "4 panels with title+description, 3 PromQL queries parse" in out[0]
    assert "3 families cover the 3 metric names" in out[1]
    assert "1 alerts with severity" in out[2]


def test_the_catalog_knows_counters_histograms_and_their_series():
    cat = catalog()
    assert cat.counters == {"lockproof_operations_total"}
    assert cat.histograms == {"lockproof_operation_duration_seconds"}
    assert cat.family("lockproof_operation_duration_seconds_bucket") == "lockproof_operation_duration_seconds"
    assert cat.family("lockproof_operations_total_bucket") is None
    assert cat.family("lockproof_unknown") is None


# ------------------------------------------------------------------ a broken dashboard is caught

def test_a_counter_outside_rate_is_caught():
    dash = dashboard()
    target = panel(dash, 2)["targets"][0]
    target["expr"] = 'sum(lockproof_operations_total{job=~"$job", instance=~"$instance"})'
    assert dashboard_problems(dash) == [
        ("panel 2 'Operations per second': counter lockproof_operations_total used outside "
         "rate()/increase()")]


def test_a_histogram_without_its_bucket_suffix_is_caught():
    dash = dashboard()
    panel(dash, 3)["targets"][0]["expr"] = \
        'lockproof_operation_duration_seconds{job=~"$job", instance=~"$instance"}'
    assert dashboard_problems(dash) == [
        ("panel 3 'Latency p95': histogram lockproof_operation_duration_seconds used without "
         "_bucket/_sum/_count")]


def test_a_query_not_filtered_by_job_and_instance_is_caught():
    dash = dashboard()
    panel(dash, 4)["targets"][0]["expr"] = "lockproof_build_info"
    assert dashboard_problems(dash) == ["panel 4 'Build': lockproof_build_info has no label selector"]
    panel(dash, 4)["targets"][0]["expr"] = 'lockproof_build_info{job=~"$job"}'
    assert dashboard_problems(dash) == [
        """panel 4 'Build': lockproof_build_info not filtered by instance=~"$instance\""""]


def test_a_panel_without_description_and_a_duplicate_id_are_caught():
    dash = dashboard()
    panel(dash, 3)["description"] = " "
    panel(dash, 4)["id"] = 2
    assert dashboard_problems(dash) == ["panel 3 'Latency p95': no description",
                                        "panel 2 'Build': duplicate id"]


def test_promql_that_does_not_parse_is_caught_by_promtool():
    dash = dashboard()
    panel(dash, 4)["targets"][0]["expr"] = 'sum(lockproof_build_info{job=~"$job", instance=~"$instance"}'
    problems = dashboard_problems(dash)
    assert len(problems) == 1 and problems[0].startswith("PromQL does not parse: ")


def test_an_unknown_grafana_variable_is_caught():
    dash = dashboard()
    panel(dash, 4)["targets"][0]["expr"] = \
        'lockproof_build_info{job=~"$job", instance=~"$instance", host=~"$host"}'
    assert dashboard_problems(dash) == [
        ("panel 4 'Build': unknown variable in "
         "'lockproof_build_info{job=~\"$job\", instance=~\"$instance\", host=~\"$host\"}'")]


def test_an_import_placeholder_and_a_missing_variable_are_caught():
    dash = dashboard()
    dash["__inputs"] = []
    dash["templating"]["list"] = [v for v in dash["templating"]["list"] if v["name"] != "case"]
    panel(dash, 4)["datasource"] = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}
    assert dashboard_problems(dash) == [
        "contains a ${DS_...} import placeholder",
        "has __inputs (import-only dashboard); provisioning needs none",
        "query variable 'case' missing",
        "variable 'case' must be multi and include All",
        ("panel 4 'Build': datasource {'type': 'prometheus', 'uid': '${DS_PROMETHEUS}'}, want "
         "{'type': 'prometheus', 'uid': '${datasource}'}")]


def test_a_catalog_family_without_a_panel_is_caught():
    cat = cd.Catalog(read(FIXTURE, cd.CATALOG) + "lockproof_lock_wait_seconds\n")
    assert dashboard_problems(dashboard(), cat) == [
        "catalog families without a panel: lockproof_lock_wait_seconds"]


def test_a_dashboard_that_is_not_json_fails_the_run(root, capsys):
    write(root, cd.DASH, "{ not json")
    assert cd.main(["--root", root]) == 1
    assert capsys.readouterr().out.startswith(f"FAIL {cd.DASH} parses\n")


# ------------------------------------------------------------------ catalog and names

def test_a_name_missing_from_the_catalog_and_a_bad_catalog_line_are_caught():
    cat = cd.Catalog("lockproof_operations_total\nlockproof_operations_total\nLockProof-Bad\n")
    assert cat.problems == [f"{cd.CATALOG}:2: duplicate lockproof_operations_total",
                            f"{cd.CATALOG}:3: not a metric family name: 'LockProof-Bad'"]
    problems, count = cd.check_names({"docs/RUNBOOK.md": "see lockproof_retries_total\n"}, cat)
    assert (problems, count) == (
        [f"docs/RUNBOOK.md:1: lockproof_retries_total is not in {cd.CATALOG}"], 1)


# ------------------------------------------------------------------ a broken alert is caught

def alerts_problems(alerts=None, tests=None, runbook=None):
    problems, _ = cd.check_alerts(alerts or read(FIXTURE, cd.ALERTS), tests or read(FIXTURE, cd.TESTS),
                                  runbook or read(FIXTURE, cd.RUNBOOK))
    return problems


def test_the_fixtures_alert_passes():
    assert alerts_problems() == []
    assert "lockproofoperationsfailing" in cd.runbook_anchors(read(FIXTURE, cd.RUNBOOK))


def test_an_alert_whose_runbook_anchor_does_not_exist_is_caught():
    runbook = read(FIXTURE, cd.RUNBOOK).replace("## LockProofOperationsFailing", "## Something else")
    runbook = runbook.replace('<a id="lockproofoperationsfailing"></a>', "")
    assert alerts_problems(runbook=runbook) == [
        f"LockProofOperationsFailing: anchor #lockproofoperationsfailing not found in {cd.RUNBOOK}"]


def test_an_alert_without_severity_or_summary_is_caught():
    alerts = read(FIXTURE, cd.ALERTS).replace("severity: page", "severity: urgent")
    alerts = alerts.replace("          summary:", "          title:")
    assert alerts_problems(alerts=alerts) == [
        "LockProofOperationsFailing: labels.severity must be page or ticket",
        "LockProofOperationsFailing: annotation summary missing"]


def test_an_alert_never_seen_quiet_and_a_test_of_an_unknown_alert_are_caught():
    tests = read(FIXTURE, cd.TESTS).replace(
        "      - eval_time: 10m\n        alertname: LockProofOperationsFailing",
        "      - eval_time: 10m\n        alertname: LockProofGone")
    assert alerts_problems(tests=tests) == [
        "LockProofOperationsFailing: no test case where it stays quiet",
        f"{cd.TESTS}: tests unknown alert LockProofGone"]


# ------------------------------------------------------------------ the shell script

def test_check_dashboards_sh_passes_on_the_fixture():
    result = check_dashboards_sh(FIXTURE)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "check-dashboards: all checks passed"
    assert result.stdout.count("ok   ") == 7  # promtool x3, dashboard, catalog, alerts, runbook links


def test_check_dashboards_sh_fails_on_a_broken_dashboard(root):
    dash = dashboard(root)
    panel(dash, 3)["description"] = ""
    write(root, cd.DASH, json.dumps(dash))
    result = check_dashboards_sh(root)
    assert result.returncode == 1
    assert f"FAIL {cd.DASH}: parses" in result.stdout
    assert "     panel 3 'Latency p95': no description" in result.stdout
    assert result.stdout.splitlines()[-1] == "check-dashboards: FAILED"


def test_check_dashboards_sh_fails_when_promtool_rejects_an_alert_rule(root):
    write(root, cd.ALERTS, read(root, cd.ALERTS).replace("> 0", "> > 0"))
    result = check_dashboards_sh(root)
    assert result.returncode == 1
    assert f"FAIL promtool check rules {cd.ALERTS}" in result.stdout
    assert result.stdout.splitlines()[-1] == "check-dashboards: FAILED"
