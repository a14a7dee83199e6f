#!/usr/bin/env bash
# Checks the operator-facing files: Prometheus config, alert rules and their unit
# tests, the Grafana dashboard, the metric catalog and the runbook anchors.
#   bash scripts/check-dashboards.sh        (from anywhere; it works from the repo root)
# Prints one line per check; exits 1 if any check fails, 2 if promtool/python3 is missing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

for tool in promtool python3; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "FAIL $tool not found (promtool: apt-get install -y prometheus)" >&2
    exit 2
  fi
done

failed=0
run() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "ok   $name"
  else
    echo "FAIL $name"
    printf '%s\n' "$out" | sed 's/^/     /'
    failed=1
  fi
}

run "promtool check config Dashboards/prometheus.yml" promtool check config Dashboards/prometheus.yml
run "promtool check rules Dashboards/alerts.yml" promtool check rules Dashboards/alerts.yml
run "promtool test rules Dashboards/alerts_test.yml" promtool test rules Dashboards/alerts_test.yml

python3 - <<'PY' || failed=1
"""Static checks of the dashboard, alerts, tests, catalog and runbook (stdlib only)."""
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

failed = False


def report(name, problems):
    global failed
    if problems:
        failed = True
        print(f"FAIL {name}")
        for p in problems:
            print(f"     {p}")
    else:
        print(f"ok   {name}")


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


# ---------------------------------------------------------------- catalog
catalog_problems = []
catalog = []
for n, line in enumerate(read(CATALOG).splitlines(), 1):
    if not re.fullmatch(r"lockproof_[a-z0-9_]*[a-z0-9]", line):
        catalog_problems.append(f"{CATALOG}:{n}: not a metric family name: {line!r}")
    elif line in catalog:
        catalog_problems.append(f"{CATALOG}:{n}: duplicate {line}")
    else:
        catalog.append(line)
catalog_set = set(catalog)
histograms = {m for m in catalog if m.endswith("_seconds")}
counters = {m for m in catalog if m.endswith("_total")}


def family(name):
    """Catalog family of a series name, or None."""
    if name in catalog_set:
        return name
    for suffix in HIST_SUFFIXES:
        if name.endswith(suffix) and name[: -len(suffix)] in histograms:
            return name[: -len(suffix)]
    return None


# ---------------------------------------------------------------- dashboard
dash_problems = []
exprs = []  # (panel title, expr)
try:
    raw = read(DASH)
    dash = json.loads(raw)
except (OSError, ValueError) as e:
    report(f"{DASH} parses", [str(e)])
    sys.exit(1)

if "${DS_" in raw:
    dash_problems.append("contains a ${DS_...} import placeholder")
if "__inputs" in dash:
    dash_problems.append("has __inputs (import-only dashboard); provisioning needs none")

variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
ds_var = variables.get("datasource")
if not ds_var or ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
    dash_problems.append("templating variable 'datasource' (type datasource, query prometheus) missing")
for name in ("job", "instance", "case"):
    v = variables.get(name)
    if not v or v.get("type") != "query":
        dash_problems.append(f"query variable '{name}' missing")
        continue
    q = v.get("query")
    q = q.get("query", "") if isinstance(q, dict) else (q or "")
    if not q.startswith("label_values("):
        dash_problems.append(f"variable '{name}' does not use label_values(): {q!r}")
    if v.get("datasource") != DS:
        dash_problems.append(f"variable '{name}' datasource is {v.get('datasource')!r}, want {DS}")
if "job" in variables and "lockproof_build_info" not in json.dumps(variables["job"]):
    dash_problems.append("variable 'job' is not taken from lockproof_build_info")
if "instance" in variables and "lockproof_build_info" not in json.dumps(variables["instance"]):
    dash_problems.append("variable 'instance' is not taken from lockproof_build_info")
case_var = variables.get("case", {})
if not (case_var.get("multi") and case_var.get("includeAll")):
    dash_problems.append("variable 'case' must be multi and include All")


def walk(panels):
    for p in panels:
        yield p
        yield from walk(p.get("panels", []))


ids = set()
for p in walk(dash.get("panels", [])):
    title = (p.get("title") or "").strip()
    where = f"panel {p.get('id')} {title!r}"
    if not title:
        dash_problems.append(f"{where}: no title")
    if not (p.get("description") or "").strip():
        dash_problems.append(f"{where}: no description")
    if p.get("id") in ids:
        dash_problems.append(f"{where}: duplicate id")
    ids.add(p.get("id"))
    if p.get("datasource") != DS:
        dash_problems.append(f"{where}: datasource {p.get('datasource')!r}, want {DS}")
    if p.get("type") != "row" and not p.get("targets"):
        dash_problems.append(f"{where}: no queries")
    for t in p.get("targets", []):
        if t.get("datasource") != DS:
            dash_problems.append(f"{where} {t.get('refId')}: datasource {t.get('datasource')!r}")
        expr = t.get("expr", "")
        if not expr:
            dash_problems.append(f"{where} {t.get('refId')}: empty expr")
        exprs.append((where, expr))

used_in_dashboard = set()
for where, expr in exprs:
    for m in NAME.finditer(expr):
        name = m.group(0)
        fam = family(name)
        used_in_dashboard.add(fam or name)
        rest = expr[m.end():]
        if not rest.startswith("{"):
            dash_problems.append(f"{where}: {name} has no label selector")
        else:
            selector = rest[: rest.find("}") + 1]
            for want in ('job=~"$job"', 'instance=~"$instance"'):
                if want not in selector:
                    dash_problems.append(f"{where}: {name} not filtered by {want}")
        is_counter = name in counters or (fam in histograms and name != fam)
        if is_counter and not re.search(r"\b(rate|increase)\(\s*$", expr[: m.start()]):
            dash_problems.append(f"{where}: counter {name} used outside rate()/increase()")
        if fam in histograms and name == fam:
            dash_problems.append(f"{where}: histogram {name} used without _bucket/_sum/_count")
# PromQL syntax: promtool parses every query, with the Grafana variables replaced, as a
# recording rule (JSON is YAML, so json.dump writes a valid rule file).
GRAFANA_VARS = {"$__rate_interval": "1m", "$__range": "1h", "$__interval": "15s",
                "$job": ".*", "$instance": ".*", "$case": ".*"}
rules = []
for i, (where, expr) in enumerate(exprs):
    e = expr
    for var in sorted(GRAFANA_VARS, key=len, reverse=True):
        e = e.replace(var, GRAFANA_VARS[var])
    if "$" in e:
        dash_problems.append(f"{where}: unknown variable in {expr!r}")
    rules.append({"record": f"lockproof_dashboard_query_{i}", "expr": e})
with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
    json.dump({"groups": [{"name": "dashboard-queries", "rules": rules}]}, f)
try:
    r = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
    if r.returncode != 0:
        dash_problems.append("PromQL does not parse: " + (r.stdout + r.stderr).strip().replace("\n", " "))
finally:
    os.unlink(f.name)

unused = [m for m in catalog if m not in used_in_dashboard]
if unused:
    dash_problems.append("catalog families without a panel: " + ", ".join(unused))

report(f"{DASH}: parses, datasource variable, no ${{DS_}}, {len(ids)} panels with title+description, "
       f"{len(exprs)} PromQL queries parse, filtered by $job/$instance, counters via rate()/increase()",
       dash_problems)

# ---------------------------------------------------------------- metric names vs catalog
names = {}
for path in (ALERTS, TESTS, DASH, RUNBOOK):
    for n, line in enumerate(read(path).splitlines(), 1):
        for m in NAME.finditer(line):
            names.setdefault(m.group(0), f"{path}:{n}")
for name, where in sorted(names.items()):
    if family(name) is None:
        catalog_problems.append(f"{where}: {name} is not in {CATALOG}")
report(f"{CATALOG}: {len(catalog)} families cover the {len(names)} metric names used in "
       "alerts, tests, dashboard and runbook", catalog_problems)

# ---------------------------------------------------------------- alerts, runbook, tests
alert_problems = []
alerts_text = read(ALERTS)
runbook = read(RUNBOOK)
anchors = set(re.findall(r'<a id="([^"]+)"', runbook))
for heading in re.findall(r"^#{1,6}\s+(.+?)\s*$", runbook, re.M):
    anchors.add(re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-"))
blocks = re.split(r"^\s*- alert:\s*", alerts_text, flags=re.M)[1:]
alert_names = []
for block in blocks:
    name = block.split()[0]
    alert_names.append(name)
    if not re.search(r"^\s+severity:\s*(page|ticket)\s*$", block, re.M):
        alert_problems.append(f"{name}: labels.severity must be page or ticket")
    for key in ("summary", "description", "runbook_url"):
        if not re.search(rf"^\s+{key}:", block, re.M):
            alert_problems.append(f"{name}: annotation {key} missing")
    m = re.search(r"^\s+runbook_url:\s*['\"]?(\S+?)['\"]?\s*$", block, re.M)
    if m:
        url = m.group(1)
        if not url.startswith("docs/RUNBOOK.md#"):
            alert_problems.append(f"{name}: runbook_url {url} does not point into docs/RUNBOOK.md")
        elif url.split("#", 1)[1] not in anchors:
            alert_problems.append(f"{name}: anchor #{url.split('#', 1)[1]} not found in {RUNBOOK}")
if len(set(alert_names)) != len(alert_names):
    alert_problems.append("duplicate alert names")

tests_text = read(TESTS)
fires, quiet = set(), set()
for case in re.split(r"^\s*- eval_time:", tests_text, flags=re.M)[1:]:
    m = re.search(r"^\s+alertname:\s*(\S+)", case, re.M)
    if not m:
        continue
    (quiet if re.search(r"exp_alerts:\s*\[\]", case) else fires).add(m.group(1))
for name in alert_names:
    if name not in fires:
        alert_problems.append(f"{name}: no test case where it fires")
    if name not in quiet:
        alert_problems.append(f"{name}: no test case where it stays quiet")
for name in (fires | quiet) - set(alert_names):
    alert_problems.append(f"{TESTS}: tests unknown alert {name}")
report(f"{ALERTS}: {len(alert_names)} alerts with severity, summary, description, runbook anchor "
       "in docs/RUNBOOK.md, and firing + quiet tests", alert_problems)

sys.exit(1 if failed else 0)
PY

if [ "$failed" -ne 0 ]; then
  echo "check-dashboards: FAILED"
  exit 1
fi
echo "check-dashboards: all checks passed"
