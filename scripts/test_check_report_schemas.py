"""Tests of check_report_schemas.py: reports a real run wrote validate; broken copies do not."""

import json
import shutil
from pathlib import Path

import pytest

import check_report_schemas

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reports"


@pytest.fixture
def reports(tmp_path):
    copy = tmp_path / "reports"
    shutil.copytree(FIXTURES, copy)
    return copy


def edit_json(path, change):
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def test_reports_written_by_a_real_run_validate(reports):
    assert check_report_schemas.problems_in(reports) == []
    assert check_report_schemas.main([str(reports)]) == 0


def test_a_threshold_warning_written_by_a_real_run_validates(reports):
    # A run too short for its p(99): the report's threshold carries a warning, which the schema knows.
    report = json.loads((reports / "charge-balance-short-p99.json").read_text())
    assert any("warning" in threshold for threshold in report["thresholds"]), report["thresholds"]
    assert check_report_schemas.problems_in(reports) == []


def test_a_threshold_warning_that_is_not_text_fails(reports):
    path = reports / "charge-balance-short-p99.json"
    edit_json(path, lambda report: report["thresholds"][0].update(warning=True))
    problems = check_report_schemas.problems_in(reports)
    assert any("thresholds/0/warning" in problem for problem in problems), problems


def test_a_camel_case_field_fails(reports):
    path = reports / "charge-balance-strict-latency.json"
    edit_json(path, lambda report: report.update(durationSeconds=report.pop("duration_seconds")))
    problems = check_report_schemas.problems_in(reports)
    assert any("durationSeconds" in problem for problem in problems), problems
    assert any("'duration_seconds' is a required property" in problem for problem in problems), problems


def test_a_report_without_its_versions_and_machine_fails(reports):
    path = reports / "process-payment-naive.json"
    edit_json(path, lambda report: [report.pop(key) for key in ("schema_version", "tool_version", "machine")])
    problems = check_report_schemas.problems_in(reports)
    for key in ("schema_version", "tool_version", "machine"):
        assert any(f"'{key}' is a required property" in problem for problem in problems), problems


def test_a_wrong_type_deep_inside_fails(reports):
    path = reports / "fault-redis-down-charge-redis-lock.json"
    edit_json(path, lambda report: report["faults"][0].update(start_seconds="1.0"))
    problems = check_report_schemas.problems_in(reports)
    assert any("faults/0/start_seconds" in problem for problem in problems), problems


def test_a_history_line_with_old_names_fails(reports):
    path = reports / "cart-quantity-naive.history.jsonl"
    lines = path.read_text().splitlines()
    entry = json.loads(lines[3])
    entry["start"] = entry.pop("start_seconds")
    lines[3] = json.dumps(entry)
    path.write_text("\n".join(lines) + "\n")
    problems = check_report_schemas.problems_in(reports)
    assert any(problem.startswith(f"{path}:4:") for problem in problems), problems


def test_junit_counts_that_do_not_add_up_fail(reports):
    path = reports / "junit.xml"
    text = path.read_text()
    header = next(line for line in text.splitlines() if line.startswith("<testsuites "))
    path.write_text(text.replace(header, '<testsuites name="lockproof" tests="1" failures="0" errors="0">'))
    problems = check_report_schemas.problems_in(reports)
    assert any('<testsuites tests="1"> but its suites sum to' in problem for problem in problems), problems


def test_junit_suite_without_properties_fails(reports):
    path = reports / "junit.xml"
    text = path.read_text()
    start = text.index("<properties>")
    end = text.index("</properties>") + len("</properties>")
    path.write_text(text[:start] + text[end:])
    problems = check_report_schemas.problems_in(reports)
    assert any("no <properties>" in problem for problem in problems), problems


def test_a_folder_without_reports_fails(tmp_path):
    assert check_report_schemas.problems_in(tmp_path) == [f"{tmp_path}: no NAME.json report"]
    assert check_report_schemas.main([str(tmp_path)]) == 1


def append_history_line(path, entry):
    with path.open("a") as lines:
        lines.write(json.dumps(entry) + "\n")


def test_a_nemesis_line_validates(reports):
    # The nemesis is a process of the history (Jepsen's :nemesis): a fault's start and end.
    path = reports / "cart-quantity-naive.history.jsonl"
    start = {"process": "nemesis", "phase": "start", "fault": "redis-down", "time_seconds": 0.5}
    append_history_line(path, start | {"targets": ["redis"]})
    append_history_line(path, start | {"phase": "end", "time_seconds": 1.5, "hits": 0})
    assert check_report_schemas.problems_in(reports) == []


def test_a_nemesis_line_without_its_phase_fails(reports):
    path = reports / "cart-quantity-naive.history.jsonl"
    append_history_line(path, {"process": "nemesis", "fault": "redis-down", "time_seconds": 0.5})
    problems = check_report_schemas.problems_in(reports)
    assert any(problem.startswith(f"{path}:") for problem in problems), problems


def first_history_line(path):
    return json.loads(path.read_text().splitlines()[0])


@pytest.mark.parametrize(
    "change",
    [
        {"outcome": "okay"},  # an enum value
        {"client": -1},  # below a minimum
        {"index": 1.5},  # a type
        {"arguments": {"user": "1"}},  # a type deep inside
        {"extra": 1},  # a field the schema does not know
    ],
)
def test_a_bad_line_shaped_almost_like_valid_ones_still_fails(reports, change):
    # Lines of one shape are validated once; a line that differs only in what the schema judges
    # (a value, a sign, a type, a key) is a shape of its own and is validated.
    path = reports / "cart-quantity-naive.history.jsonl"
    append_history_line(path, first_history_line(path) | change)
    problems = check_report_schemas.problems_in(reports)
    assert [problem for problem in problems if problem.startswith(f"{path}:21:")], problems


def test_a_bad_line_repeated_is_reported_at_every_line(reports):
    path = reports / "cart-quantity-naive.history.jsonl"
    bad = first_history_line(path) | {"outcome": "okay"}
    append_history_line(path, bad)
    append_history_line(path, bad | {"client": 7, "start_seconds": 0.07})
    problems = check_report_schemas.problems_in(reports)
    assert any(problem.startswith(f"{path}:21:") for problem in problems), problems
    assert f"{path}:22: shaped like line 21, which does not validate" in problems, problems


def test_a_schema_with_keywords_shapes_do_not_preserve_validates_every_line(tmp_path):
    import jsonschema

    schema = {"type": "object", "properties": {"key": {"type": "string", "pattern": "^lock:"}}}
    path = tmp_path / "h.history.jsonl"
    path.write_text('{"key": "lock:1"}\n{"key": "other"}\n')
    problems = check_report_schemas.history_problems(path, jsonschema.Draft202012Validator(schema))
    assert [problem for problem in problems if problem.startswith(f"{path}:2:")], problems


def test_histories_checked_in_parallel_report_the_same_problems_in_the_same_order(reports, monkeypatch):
    # make verify's histories are large enough for worker processes; these fixtures are not, so
    # the threshold is lowered: the problems and their order must not depend on the path taken.
    paths = sorted(reports.glob("*.history.jsonl"))
    assert len(paths) >= 3
    for path in (paths[0], paths[-1]):
        append_history_line(path, first_history_line(path) | {"outcome": "okay"})
    validator = check_report_schemas.load_validator("history-entry.schema.json")
    serial = check_report_schemas.histories_problems(paths, validator, workers=1)
    monkeypatch.setattr(check_report_schemas, "PARALLEL_BYTES", 0)
    parallel = check_report_schemas.histories_problems(paths, validator, workers=2)
    assert parallel == serial
    assert [bool(found) for found in serial] == [True] + [False] * (len(paths) - 2) + [True]


@pytest.mark.parametrize(
    "entry",
    [
        {"client": True},  # a boolean is not a number
        {"outcome": 1},  # an enum's value with the type of none of its members
    ],
)
def test_a_line_shaped_like_a_valid_one_but_for_a_type_is_validated(reports, entry):
    path = reports / "cart-quantity-naive.history.jsonl"
    append_history_line(path, first_history_line(path) | entry)
    problems = check_report_schemas.problems_in(reports)
    assert [problem for problem in problems if problem.startswith(f"{path}:21:")], problems


def test_a_shape_tells_apart_exactly_what_the_schema_judges():
    shape = check_report_schemas.shape_function({"outcome"}, {0, 1})
    line = {"client": 3, "outcome": "ok", "arguments": {"user": 1}, "tags": ["a", "b"]}
    assert shape(line) == shape({"tags": ["b"], "arguments": {"user": 9}, "outcome": "ok", "client": 70})
    for other in (
        {"client": 0},  # meets one minimum of two
        {"client": -1},  # meets none
        {"client": 3.5},  # a float
        {"client": True},  # a boolean
        {"outcome": "fail"},  # another enum value
        {"arguments": {"user": "1"}},  # a type deep inside
        {"tags": ["a", 1]},  # an array's items of another type too
        {"extra": None},  # a key more
    ):
        assert shape(line | other) != shape(line), other
    assert shape({"client": -2}) == shape({"client": -1}) != shape({"client": 0}) != shape({"client": 1})
    assert shape({"client": 1}) == shape({"client": 5})
