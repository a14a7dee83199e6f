"""Tests of scripts/runbook_links.py on the shipped files and on broken copies."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import runbook_links  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def test_the_shipped_alerts_link_to_existing_sections():
    assert runbook_links.problems(read("Dashboards/alerts.yml"), read("docs/RUNBOOK.md")) == []


def test_a_missing_anchor_and_a_relative_link_are_reported():
    alerts = read("Dashboards/alerts.yml")
    runbook = read("docs/RUNBOOK.md").replace('<a id="lockprooftargetdown">', "")
    assert runbook_links.problems(alerts, runbook) == [
        'LockProofTargetDown: no anchor <a id="lockprooftargetdown"> in the runbook'
    ]
    relative = alerts.replace(
        runbook_links.TEMPLATE + "lockproofdeadlockdetected", "docs/RUNBOOK.md#lockproofdeadlockdetected"
    )
    found = runbook_links.problems(relative, read("docs/RUNBOOK.md"))
    assert len(found) == 1 and found[0].startswith("LockProofDeadlockDetected: runbook_url 'docs/RUNBOOK.md#")


def test_main_exit_status(tmp_path, capsys):
    assert (
        runbook_links.main(
            ["x", os.path.join(ROOT, "Dashboards/alerts.yml"), os.path.join(ROOT, "docs/RUNBOOK.md")]
        )
        == 0
    )
    broken = tmp_path / "RUNBOOK.md"
    broken.write_text("nothing here\n")
    assert runbook_links.main(["x", os.path.join(ROOT, "Dashboards/alerts.yml"), str(broken)]) == 1
    assert "no anchor" in capsys.readouterr().out
