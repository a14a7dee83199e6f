#!/usr/bin/env python3
"""Checks the machine-readable reports of a run against their published layout.

  scripts/check_report_schemas.py REPORT_DIR

Every NAME.json must validate against docs/schemas/scenario-report.schema.json, every line of
every NAME.history.jsonl against docs/schemas/history-entry.schema.json (a line shaped like one
already validated is not validated again: see shape_of), and junit.xml must count one way at each
level: a suite's tests, failures and errors are its test cases, <failure>s and <error>s;
<testsuites> holds the sums of its suites'; every suite carries its key figures as <properties>.
Prints one line per problem; exits 1 when there is any (or no report at all), 2 when jsonschema is
missing. `make verify` runs it on the reports the real run wrote.
"""

import json
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"
# The keywords shape_of knows how to preserve. A schema using any other (a pattern, a maximum…)
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


def shape_of(value, valued_names, minimums, name=None):
    """What decides a line's validity under a schema of SHAPE_SAFE_KEYWORDS: its keys, its values'
    types, which of the schema's minimums each number meets, and the values of the enum and const
    fields. Two lines of one shape are both valid or both invalid, so only the first is validated
    (a run's history is thousands of lines of a few shapes; validating each took verify 2 minutes)."""
    if isinstance(value, dict):
        return (
            "object",
            tuple(sorted((key, shape_of(item, valued_names, minimums, key)) for key, item in value.items())),
        )
    if isinstance(value, list):
        return ("array", tuple(sorted({shape_of(item, valued_names, minimums) for item in value}, key=repr)))
    if name in valued_names:
        return (type(value).__name__, json.dumps(value))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (type(value).__name__, tuple(value >= minimum for minimum in sorted(minimums)))
    return (type(value).__name__, None)


def history_problems(path, validator):
    keywords, valued_names, minimums = schema_facts(validator.schema)
    dedupe = keywords <= SHAPE_SAFE_KEYWORDS
    problems = []
    seen = {}
    with path.open() as lines:
        for number, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
            except ValueError as error:
                problems.append(f"{path}:{number}: not JSON: {error}")
                continue
            shape = shape_of(entry, valued_names, minimums) if dedupe else None
            if shape is not None and shape in seen:
                if seen[shape]:
                    problems.append(
                        f"{path}:{number}: shaped like line {seen[shape]}, which does not validate"
                    )
                continue
            found = schema_problems(validator, entry, f"{path}:{number}")
            problems += found
            if shape is not None:
                seen[shape] = number if found else 0
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
    for path in sorted(directory.glob("*.history.jsonl")):
        problems += history_problems(path, history_validator)
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
