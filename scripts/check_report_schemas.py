#!/usr/bin/env python3
"""Checks the machine-readable reports of a run against their published layout.

  scripts/check_report_schemas.py REPORT_DIR

Every NAME.json must validate against docs/schemas/scenario-report.schema.json, every line of
every NAME.history.jsonl against docs/schemas/history-entry.schema.json (a line shaped like one
already validated is not validated again: see shape_function), and junit.xml must count one way at each
level: a suite's tests, failures and errors are its test cases, <failure>s and <error>s;
<testsuites> holds the sums of its suites'; every suite carries its key figures as <properties>.
Prints one line per problem; exits 1 when there is any (or no report at all), 2 when jsonschema is
missing. `make verify` runs it on the reports the real run wrote.
"""

import bisect
import concurrent.futures
import json
import multiprocessing
import os
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"
# The keywords shape_function knows how to preserve. A schema using any other (a pattern, a maximum…)
# makes every history line validate on its own.
SHAPE_SAFE_KEYWORDS = {
    "$schema",
    "$id",
    "$ref",
    "$defs",
    "title",
    "description",
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "oneOf",
    "anyOf",
    "not",
    "if",
    "then",
    "else",
    "enum",
    "const",
    "minimum",
}
NOT_SCENARIO_REPORTS = {"bench.json"}
# Below this many bytes of history, starting worker processes costs more than it saves.
PARALLEL_BYTES = 4_000_000


def load_validator(name):
    import jsonschema

    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def schema_problems(validator, document, where):
    return [
        f"{where}: {'/'.join(str(part) for part in error.absolute_path) or '(top)'}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
    ]


def report_problems(path, validator):
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        return [f"{path}: not JSON: {error}"]
    return schema_problems(validator, document, str(path))


def schema_facts(schema, facts=None):
    """The keywords the schema uses, the property names it constrains by value (enum, const), and
    its minimums: (keywords, valued names, minimums)."""
    facts = (set(), set(), set()) if facts is None else facts
    keywords, valued_names, minimums = facts
    if isinstance(schema, dict):
        for key, value in schema.items():
            keywords.add(key)
            if key == "minimum":
                minimums.add(value)
            if key == "properties":
                constrained = (
                    name
                    for name, sub in value.items()
                    if isinstance(sub, dict) and {"enum", "const"} & sub.keys()
                )
                valued_names.update(constrained)
            if key in ("properties", "$defs"):
                for subschema in value.values():
                    schema_facts(subschema, facts)
            elif isinstance(value, (dict, list)):
                schema_facts(value, facts)
    elif isinstance(schema, list):
        for item in schema:
            schema_facts(item, facts)
    return facts


def shape_function(valued_names, minimums):
    """shape(value): what decides a line's validity under a schema of SHAPE_SAFE_KEYWORDS: its keys,
    its values' types, which of the schema's minimums each number meets, and the values of the enum
    and const fields. Two lines of one shape are both valid or both invalid, so only the first is
    validated (a run's history is hundreds of thousands of lines of a few shapes; validating each
    took verify 2 minutes). Computed for every line, so it is written for speed: exact type tests,
    a scalar member handled in its object's loop rather than by a call of its own."""
    minimums = sorted(minimums)

    def member(key, item):
        kind = type(item)
        if kind is dict or kind is list:
            return shape(item, key)
        if key in valued_names:
            # A scalar's type and value (True and 1 differ by type); anything else its JSON.
            return (kind, item if kind in (str, int, float, bool) else json.dumps(item))
        if kind is int or kind is float:
            # How many of the (sorted) minimums it meets.
            return (kind, bisect.bisect_right(minimums, item))
        return kind

    def shape(value, name=None):
        kind = type(value)
        if kind is dict:
            # Keys are unique: sorting the items compares keys only.
            return (dict, tuple([(key, member(key, item)) for key, item in sorted(value.items())]))
        if kind is list:
            return (list, frozenset([member(None, item) for item in value]))
        return member(name, value)

    return shape


def history_problems(path, validator):
    keywords, valued_names, minimums = schema_facts(validator.schema)
    shape = shape_function(valued_names, minimums) if keywords <= SHAPE_SAFE_KEYWORDS else None
    problems = []
    seen = {}
    loads = json.loads
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            try:
                entry = loads(line)
            except ValueError as error:
                problems.append(f"{path}:{number}: not JSON: {error}")
                continue
            key = shape(entry) if shape is not None else None
            if key is not None and key in seen:
                if seen[key]:
                    problems.append(f"{path}:{number}: shaped like line {seen[key]}, which does not validate")
                continue
            found = schema_problems(validator, entry, f"{path}:{number}")
            problems += found
            if key is not None:
                seen[key] = number if found else 0
    return problems


def junit_problems(path):
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as error:
        return [f"{path}: not XML: {error}"]
    if root.tag != "testsuites":
        return [f"{path}: the root is <{root.tag}>, not <testsuites>"]
    problems = []
    sums = {"tests": 0, "failures": 0, "errors": 0}
    for suite in root.findall("testsuite"):
        name = suite.get("name")
        cases = suite.findall("testcase")
        counted = {
            "tests": len(cases),
            "failures": sum(len(case.findall("failure")) for case in cases),
            "errors": sum(len(case.findall("error")) for case in cases),
        }
        for key, value in counted.items():
            if suite.get(key) != str(value):
                problems.append(f'{path}: suite {name}: {key}="{suite.get(key)}" but it holds {value}')
            sums[key] += value
        properties = suite.find("properties")
        if properties is None or not properties.findall("property"):
            problems.append(f"{path}: suite {name}: no <properties> with the run's figures")
    for key, value in sums.items():
        if root.get(key) != str(value):
            problems.append(f'{path}: <testsuites {key}="{root.get(key)}"> but its suites sum to {value}')
    return problems


# The history files' validator, for the worker processes (inherited: they are forked).
_history_validator = None


def _history_file_problems(path):
    return history_problems(path, _history_validator)


def histories_problems(paths, validator, workers=None):
    """history_problems of each path, in order: over several processes when there are several
    cores and enough lines to pay for them (a run's histories are hundreds of thousands of
    lines; parsing them is most of this script's time)."""
    global _history_validator
    workers = workers or min(os.cpu_count() or 1, 4)
    if workers < 2 or sum(path.stat().st_size for path in paths) < PARALLEL_BYTES:
        return [history_problems(path, validator) for path in paths]
    _history_validator = validator
    context = multiprocessing.get_context("fork")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        # The largest first, so that no worker is left with a big file at the end.
        futures = {
            path: pool.submit(_history_file_problems, path)
            for path in sorted(paths, key=lambda path: path.stat().st_size, reverse=True)
        }
        return [futures[path].result() for path in paths]


def problems_in(directory):
    directory = Path(directory)
    reports = sorted(path for path in directory.glob("*.json") if path.name not in NOT_SCENARIO_REPORTS)
    if not reports:
        return [f"{directory}: no NAME.json report"]
    report_validator = load_validator("scenario-report.schema.json")
    history_validator = load_validator("history-entry.schema.json")
    problems = []
    for path in reports:
        problems += report_problems(path, report_validator)
    histories = sorted(directory.glob("*.history.jsonl"))
    for found in histories_problems(histories, history_validator):
        problems += found
    junit = directory / "junit.xml"
    if junit.exists():
        problems += junit_problems(junit)
    return problems


def main(arguments):
    if len(arguments) != 1:
        print("usage: check_report_schemas.py REPORT_DIR", file=sys.stderr)
        return 2
    try:
        import jsonschema  # noqa: F401
    except ImportError:
        message = "the jsonschema package is missing (scripts/install-deps.sh installs it)"
        print(f"check_report_schemas: {message}", file=sys.stderr)
        return 2
    problems = problems_in(arguments[0])
    for problem in problems:
        print(problem)
    if not problems:
        print(f"ok   {arguments[0]}: reports match docs/schemas/")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
