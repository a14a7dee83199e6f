"""Tests of pgbench_script.py on a small bench.json in fixtures/pgbench (snake_case keys)."""

import json
import os
import subprocess
import sys

import pgbench_script

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH_JSON = os.path.join(HERE, "fixtures", "pgbench", "bench.json")
SCRIPT = os.path.join(HERE, "pgbench_script.py")


def run(tmp_path, key, bench_json=BENCH_JSON):
    script_out = tmp_path / "cell.sql"
    definitions_out = tmp_path / "cell.defs"
    result = subprocess.run(
        [sys.executable, SCRIPT, str(bench_json), key, str(script_out), str(definitions_out)],
        capture_output=True,
        text=True,
        check=False,
    )
    return result, script_out, definitions_out


def test_writes_the_script_and_sorted_definitions(tmp_path):
    result, script_out, definitions_out = run(tmp_path, "charge-balance/pessimistic/spread")
    assert result.returncode == 0, result.stderr
    assert script_out.read_text().startswith("\\set id random(1, 10000)\nBEGIN;\n")
    assert definitions_out.read_text().splitlines() == ["-D", "amount=101", "-D", "users=10000"]


def test_a_cell_without_definitions_gets_an_empty_definitions_file(tmp_path):
    result, script_out, definitions_out = run(tmp_path, "order-state/seed/spread")
    assert result.returncode == 0, result.stderr
    assert script_out.read_text() == "\\set slot :n\nSELECT 1;\n"
    assert definitions_out.read_text() == ""


def test_a_missing_cell_exits_1_naming_the_key(tmp_path):
    result, script_out, _ = run(tmp_path, "charge-balance/naive/spread")
    assert result.returncode == 1
    assert "charge-balance/naive/spread" in result.stderr
    assert not script_out.exists()


def test_the_old_camel_case_keys_are_not_read(tmp_path):
    legacy = tmp_path / "legacy.json"
    legacy.write_text(json.dumps({"pgbenchScripts": {"a/b/spread": "SELECT 1;\n"}}))
    result, _, _ = run(tmp_path, "a/b/spread", bench_json=legacy)
    assert result.returncode == 1


def test_an_unreadable_report_exits_2(tmp_path):
    result, _, _ = run(tmp_path, "a/b/spread", bench_json=tmp_path / "absent.json")
    assert result.returncode == 2
    assert "absent.json" in result.stderr


def test_script_and_definitions_reads_snake_case_keys():
    with open(BENCH_JSON, encoding="utf-8") as source:
        report = json.load(source)
    script, arguments = pgbench_script.script_and_definitions(report, "charge-balance/pessimistic/spread")
    assert "FOR UPDATE" in script
    assert arguments == ["-D", "amount=101", "-D", "users=10000"]
