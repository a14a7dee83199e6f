#!/usr/bin/env python3
"""Static checks of the Grafana dashboard, the alert rules and their tests, the metric catalog and
the runbook anchors (stdlib only; promtool parses the dashboard's PromQL).

  scripts/check_dashboards.py [--root DIR]

DIR (default: this repository) holds Dashboards/ and docs/RUNBOOK.md. Prints one line per check
(`ok   ...` or `FAIL ...` and its problems); exits 1 if any check fails. scripts/check-dashboards.sh
runs it after promtool's own checks of the config, the rules and the rule tests.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

DASH = "Dashboards/grafana/lockproof.json"
ALERTS = "Dashboards/alerts.yml"
TESTS = "Dashboards/alerts_test.yml"
CATALOG = "Dashboards/metric-catalog.txt"
RUNBOOK = "docs/RUNBOOK.md"
DS = {"type": "prometheus", "uid": "${datasource}"}
NAME = re.compile(r"(?<![A-Za-z0-9_])lockproof_[a-z0-9_]*[a-z0-9]")
HIST_SUFFIXES = ("_bucket", "_sum", "_count")
# Grafana's variables, replaced by something PromQL parses before promtool sees a query.
GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s",
                "$job": ".*", "$instance": ".*", "$case": ".*"}


class Catalog:
    """The metric families of metric-catalog.txt: counters end in _total, histograms in _seconds."""

    def __init__(self, text):
        self.problems = []
        self.names = []
        for n, line in enumerate(text.splitlines(), 1):
            if not re.fullmatch(r"lockproof_[a-z0-9_]*[a-z0-9]", line):
                self.problems.append(f"{CATALOG}:{n}: not a metric family name: {line!r}")
            elif line in self.names:
                self.problems.append(f"{CATALOG}:{n}: duplicate {line}")
            else:
                self.names.append(line)
        self.histograms = {m for m in self.names if m.endswith("_seconds")}
        self.counters = {m for m in self.names if m.endswith("_total")}

    def family(self, name):
        """Catalog family of a series name, or None."""
        if name in self.names:
            return name
        for suffix in HIST_SUFFIXES:
            if name.endswith(suffix) and name[: -len(suffix)] in self.histograms:
                return name[: -len(suffix)]
        return None


def promql_problems(exprs):
    """promtool's complaint about the queries [(where, expr)], or None when every one parses.

    The queries are written as recording rules (JSON is YAML, so json.dump writes a valid rule file).
    """
    rules = [{"record": f"lockproof_dashboard_query_{i}", "expr": expr}
             for i, (_where, expr) in enumerate(exprs)]
    with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
        json.dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f)
    try:
        r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True,
                           check=False)
    finally:
        os.unlink(f.name)
    if r.returncode != 0:
        return (r.stdout + r.stderr).strip().replace("\n", " ")
    return None


def check_variables(dash):
    """Problems of the dashboard's templating variables."""
    problems = []
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds_var = variables.get("datasource")
    if not ds_var or ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
        problems.append("templating variable 'datasource' (type datasource, query prometheus) missing")
    for name in ("job", "instance", "case"):
        v = variables.get(name)
        if not v or v.get("type") != "query":
            problems.append(f"query variable '{name}' missing")
            continue
        q = v.get("query")
        q = q.get("query", "") if isinstance(q, dict) else (q or "")
        if not q.startswith("label_values("):
            problems.append(f"variable '{name}' does not use label_values(): {q!r}")
        if v.get("datasource") != DS:
            problems.append(f"variable '{name}' datasource is {v.get('datasource')!r}, want {DS}")
    for name in ("job", "instance"):
        if name in variables and "lockproof_build_info" not in json.dumps(variables[name]):
            problems.append(f"variable '{name}' is not taken from lockproof_build_info")
    case_var = variables.get("case", {})
    if not (case_var.get("multi") and case_var.get("includeAll")):
        problems.append("variable 'case' must be multi and include All")
    return problems


def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))


def check_panels(dash):
    """(problems, panel ids, [(where, expr)]) of the dashboard's panels and their queries."""
    problems, ids, exprs = [], set(), []
    for p in walk(dash.get("panels", [])):
        title = (p.get("title") or "").strip()
        where = f"panel {p.get('id')} {title!r}"
        if not title:
            problems.append(f"{where}: no title")
        if not (p.get("description") or "").strip():
            problems.append(f"{where}: no description")
        if p.get("id") in ids:
            problems.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        if p.get("datasource") != DS:
            problems.append(f"{where}: datasource {p.get('datasource')!r}, want {DS}")
        if p.get("type") != "row" and not p.get("targets"):
            problems.append(f"{where}: no queries")
        for t in p.get("targets", []):
            if t.get("datasource") != DS:
                problems.append(f"{where} {t.get('refId')}: datasource {t.get('datasource')!r}")
            expr = t.get("expr", "")
            if not expr:
                problems.append(f"{where} {t.get('refId')}: empty expr")
            exprs.append((where, expr))
    return problems, ids, exprs


def check_queries(exprs, catalog):
    """(problems, catalog families used) of the queries: selectors, rate() on counters, histograms."""
    problems, used = [], set()
    for where, expr in exprs:
        for m in NAME.finditer(expr):
            name = m.group(0)
            fam = catalog.family(name)
            used.add(fam or name)
            rest = expr[m.end():]
            if not rest.startswith("{"):
                problems.append(f"{where}: {name} has no label selector")
            else:
                selector = rest[: rest.find("}") + 1]
                for want in ('job=~"$job"', 'instance=~"$instance"'):
                    if want not in selector:
                        problems.append(f"{where}: {name} not filtered by {want}")
            is_counter = name in catalog.counters or (fam in catalog.histograms and name != fam)
            if is_counter and not re.search(r"\b(rate|increase)\(\s*$", expr[: m.start()]):
                problems.append(f"{where}: counter {name} used outside rate()/increase()")
            if fam in catalog.histograms and name == fam:
                problems.append(f"{where}: histogram {name} used without _bucket/_sum/_count")
    return problems, used


def substitute_variables(exprs):
    """(problems, [(where, expr)]) with Grafana's variables replaced; an unknown one is a problem."""
    problems, substituted = [], []
    for where, expr in exprs:
        e = expr
        for var in sorted(GRAFANA_VARS, key=len, reverse=True):
            e = e.replace(var, GRAFANA_VARS[var])
        if "$" in e:
            problems.append(f"{where}: unknown variable in {expr!r}")
        substituted.append((where, e))
    return problems, substituted


def check_dashboard(raw, catalog, parse_promql=promql_problems):
    """(problems, panel count, query count) of the dashboard's JSON text. Raises ValueError when it
    does not parse."""
    dash = json.loads(raw)
    problems = []
    if "${DS_" in raw:
        problems.append("contains a ${DS_...} import placeholder")
    if "__inputs" in dash:
        problems.append("has __inputs (import-only dashboard); provisioning needs none")
    problems += check_variables(dash)
    panel_problems, ids, exprs = check_panels(dash)
    problems += panel_problems
    query_problems, used = check_queries(exprs, catalog)
    problems += query_problems
    variable_problems, substituted = substitute_variables(exprs)
    problems += variable_problems
    complaint = parse_promql(substituted)
    if complaint:
        problems.append("PromQL does not parse: " + complaint)
    unused = [m for m in catalog.names if m not in used]
    if unused:
        problems.append("catalog families without a panel: " + ", ".join(unused))
    return problems, len(ids), len(exprs)


def check_names(texts, catalog):
    """(problems, name count): every lockproof_ name in texts {path: text} must be a catalog family
    or a histogram's series."""
    names = {}
    for path, text in texts.items():
        for n, line in enumerate(text.splitlines(), 1):
            for m in NAME.finditer(line):
                names.setdefault(m.group(0), f"{path}:{n}")
    problems = [f"{where}: {name} is not in {CATALOG}"
                for name, where in sorted(names.items()) if catalog.family(name) is None]
    return problems, len(names)


RUNBOOK_TEMPLATE = "{{ with $externalLabels.runbook_base_url }}{{ . }}{{ else }}docs/RUNBOOK.md{{ end }}#"


def runbook_anchors(runbook):
    """Explicit <a id> anchors and the anchors GitHub derives from the headings."""
    anchors = set(re.findall(r'<a id="([^"]+)"', runbook))
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", runbook, re.M):
        anchors.add(re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-"))
    return anchors


def check_alerts(alerts_text, tests_text, runbook):
    """(problems, alert count): severity, annotations, a runbook anchor that exists, and a test
    where each alert fires and one where it stays quiet."""
    problems = []
    anchors = runbook_anchors(runbook)
    alert_names = []
    for block in re.split(r"^\s*- alert:\s*", alerts_text, flags=re.M)[1:]:
        name = block.split()[0]
        alert_names.append(name)
        if not re.search(r"^\s+severity:\s*(page|ticket)\s*$", block, re.M):
            problems.append(f"{name}: labels.severity must be page or ticket")
        for key in ("summary", "description", "runbook_url"):
            if not re.search(rf"^\s+{key}:", block, re.M):
                problems.append(f"{name}: annotation {key} missing")
        m = re.search(r"^\s+runbook_url:\s*(.+?)\s*$", block, re.M)
        if m:
            # The link is absolute when Prometheus sets runbook_base_url (RUNBOOK_TEMPLATE);
            # either way it ends in the runbook's anchor for the alert.
            url = m.group(1).strip("'\"")
            if url.startswith(RUNBOOK_TEMPLATE):
                url = "docs/RUNBOOK.md#" + url[len(RUNBOOK_TEMPLATE):]
            if not url.startswith("docs/RUNBOOK.md#"):
                problems.append(f"{name}: runbook_url {url} does not point into docs/RUNBOOK.md")
            elif url.split("#", 1)[1] not in anchors:
                problems.append(f"{name}: anchor #{url.split('#', 1)[1]} not found in {RUNBOOK}")
    if len(set(alert_names)) != len(alert_names):
        problems.append("duplicate alert names")

    fires, quiet = set(), set()
    for case in re.split(r"^\s*- eval_time:", tests_text, flags=re.M)[1:]:
        m = re.search(r"^\s+alertname:\s*(\S+)", case, re.M)
        if not m:
            continue
        (quiet if re.search(r"exp_alerts:\s*\[\]", case) else fires).add(m.group(1))
    for name in alert_names:
        if name not in fires:
            problems.append(f"{name}: no test case where it fires")
        if name not in quiet:
            problems.append(f"{name}: no test case where it stays quiet")
    for name in sorted((fires | quiet) - set(alert_names)):
        problems.append(f"{TESTS}: tests unknown alert {name}")
    return problems, len(alert_names)


def report(name, problems):
    """Prints one check's outcome; True when it passed."""
    if problems:
        print(f"FAIL {name}")
        for p in problems:
            print(f"     {p}")
        return False
    print(f"ok   {name}")
    return True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."),
                        help="the directory holding Dashboards/ and docs/ (default: this repository)")
    args = parser.parse_args(argv)

    def read(path):
        with open(os.path.join(args.root, path), encoding="utf-8") as f:
            return f.read()

    catalog = Catalog(read(CATALOG))
    try:
        raw = read(DASH)
        dash_problems, panels, queries = check_dashboard(raw, catalog)
    except (OSError, ValueError) as e:
        report(f"{DASH} parses", [str(e)])
        return 1
    ok = report(f"{DASH}: parses, datasource variable, no ${{DS_}}, {panels} panels with "
                f"title+description, {queries} PromQL queries parse, filtered by $job/$instance, "
                "counters via rate()/increase()", dash_problems)

    texts = {path: read(path) for path in (ALERTS, TESTS, DASH, RUNBOOK)}
    name_problems, names = check_names(texts, catalog)
    ok &= report(f"{CATALOG}: {len(catalog.names)} families cover the {names} metric names used "
                 "in alerts, tests, dashboard and runbook", catalog.problems + name_problems)

    alert_problems, alerts = check_alerts(texts[ALERTS], texts[TESTS], texts[RUNBOOK])
    ok &= report(f"{ALERTS}: {alerts} alerts with severity, summary, description, runbook anchor "
                 "in docs/RUNBOOK.md, and firing + quiet tests", alert_problems)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
