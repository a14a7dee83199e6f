#!/usr/bin/env python3
"""Checks that every alert of Dashboards/alerts.yml links to its own section of docs/RUNBOOK.md.

    python3 scripts/runbook_links.py [ALERTS [RUNBOOK]]

An alert's runbook_url is a template: the external label runbook_base_url (absolute, set in
Dashboards/prometheus.yml) or else docs/RUNBOOK.md, then `#` and the alert's name in lower case.
The anchor must exist in the runbook (`<a id="...">`). Prints one line per problem; exit 1 if any.
"""

import re
import sys

import yaml

TEMPLATE = "{{ with $externalLabels.runbook_base_url }}{{ . }}{{ else }}docs/RUNBOOK.md{{ end }}#"


def problems(alerts_text, runbook_text):
    anchors = set(re.findall(r'<a id="([^"]+)"', runbook_text))
    found = []
    for group in yaml.safe_load(alerts_text).get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert")
            if not name:
                continue
            url = (rule.get("annotations") or {}).get("runbook_url", "")
            expected = TEMPLATE + name.lower()
            if url != expected:
                found.append(f"{name}: runbook_url {url!r}, expected {expected!r}")
            elif name.lower() not in anchors:
                found.append(f'{name}: no anchor <a id="{name.lower()}"> in the runbook')
    return found


def main(argv):
    alerts = argv[1] if len(argv) > 1 else "Dashboards/alerts.yml"
    runbook = argv[2] if len(argv) > 2 else "docs/RUNBOOK.md"
    with open(alerts, encoding="utf-8") as f:
        alerts_text = f.read()
    with open(runbook, encoding="utf-8") as f:
        runbook_text = f.read()
    found = problems(alerts_text, runbook_text)
    for problem in found:
        print(f"{alerts}: {problem}")
    if not found:
        print(
            f"ok   {alerts}: every runbook_url is the runbook_base_url template with an anchor of {runbook}"
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
