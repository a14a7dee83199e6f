"""Tests of check_imports.py on a fake package in fixtures/imports (a dump-package JSON and files)."""

import copy
import json
import os
import subprocess
import sys

import pytest

import check_imports

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "imports")


def manifest(name="truthful.json"):
    with open(os.path.join(FIXTURE, name), encoding="utf-8") as dump:
        return json.load(dump)


def target(m, name):
    return next(t for t in m["targets"] if t["name"] == name)


def problems_of(m):
    return check_imports.check(FIXTURE, m)[0]


def run_script(dump):
    return subprocess.run(
        [sys.executable, os.path.join(HERE, "check_imports.py"), "--package-path", FIXTURE,
         "--dump", os.path.join(FIXTURE, dump)],
        capture_output=True, text=True, check=False)


# ------------------------------------------------------------------ reading import declarations

@pytest.mark.parametrize("line, module", [
    ("import Foundation", "Foundation"),
    ("@testable import LockProofScenario", "LockProofScenario"),
    ("@_implementationOnly import CLibPQ", "CLibPQ"),
    ("@preconcurrency import Dispatch", "Dispatch"),
    ("@_spi(Testing) @testable import Core", "Core"),
    ("public import Driver", "Driver"),
    ("@preconcurrency internal import Driver", "Driver"),
    ("import struct Yams.Node", "Yams"),
    ("import func Glibc.usleep", "Glibc"),
    ("import CLibPQ.Sub", "CLibPQ"),
    ("    import Indented", "Indented"),
    ("import `Quoted`", "Quoted"),
])
def test_every_form_of_import_names_its_module(line, module):
    assert check_imports.imports_in(line + "\n") == [(1, module)]


def test_two_imports_on_one_line_separated_by_a_semicolon():
    assert check_imports.imports_in("import A; import B\n") == [(1, "A"), (1, "B")]


@pytest.mark.parametrize("text", [
    "// import Hidden\n",
    "/* import Hidden */\n",
    "/* outer /* nested */\nimport Hidden */\n",
    'let s = """\nimport Hidden\n"""\n',
    'let s = #"""\nimport Hidden "\n"""#\n',
    'let s = "\\(f("x")) \\n"\nlet t = """\nimport Hidden\n"""\n',
    "let r = #/\nimport Hidden\n/#\n",
    "let importer = 1\n",
    "#if canImport(Hidden)\n#endif\n",
])
def test_comments_strings_and_conditions_are_not_imports(text):
    assert check_imports.imports_in(text) == []


def test_an_import_after_a_multi_line_string_keeps_its_line_number():
    text = 'let s = """\n  a "quote" \\(x) \n"""\nimport After\n'
    assert check_imports.imports_in(text) == [(4, "After")]


def test_imports_in_every_branch_of_an_if_count():
    text = "#if canImport(Glibc)\nimport Glibc\n#elseif FLAG\nimport Other\n#else\nimport Darwin\n#endif\n"
    assert check_imports.imports_in(text) == [(2, "Glibc"), (4, "Other"), (6, "Darwin")]


# ------------------------------------------------------------------ manifest against sources

def test_the_truthful_fixture_passes():
    problems, targets, files = check_imports.check(FIXTURE, manifest())
    assert problems == []
    # CShim (a system library) has no Swift sources and is not checked; the other five are.
    assert (targets, files) == (5, 5)


def test_an_import_reached_only_through_another_dependency_is_undeclared():
    m = manifest()
    # App still reaches Driver through Core, which SwiftPM would let compile: the check does not.
    target(m, "App")["dependencies"] = [
        d for d in target(m, "App")["dependencies"] if d.get("byName", [None])[0] != "Driver"]
    assert problems_of(m) == [
        "App: Sources/App/main.swift:3: imports Driver, which App does not declare in Package.swift"]


def test_a_c_shim_import_must_be_declared_too():
    m = manifest()
    target(m, "Driver")["dependencies"] = []
    assert problems_of(m) == [
        ("Driver: Sources/Driver/Driver.swift:7: imports CShim, which Driver does not declare in "
         "Package.swift")]


def test_a_declared_dependency_nothing_imports_is_a_dead_edge():
    m = manifest()
    target(m, "CoreTests")["dependencies"].append({"byName": ["Driver", None]})
    assert problems_of(m) == [
        ("CoreTests: declares Driver (module Driver) but none of its 1 Swift files imports it "
         "(dead edge)")]


def test_a_product_is_mapped_to_its_module_and_an_unused_product_is_dead():
    m = manifest()
    target(m, "App")["dependencies"].append({"product": ["Logging", "swift-log", None, None]})
    assert problems_of(m) == [
        "App: declares Logging (module Logging) but none of its 1 Swift files imports it (dead edge)"]


def test_a_module_alias_renames_the_products_module():
    m = manifest()
    core = target(m, "Core")
    core["dependencies"] = [{"byName": ["Driver", None]},
                            {"product": ["Yams", "Yams", {"Yams": "YAML"}, None]}]
    assert problems_of(m) == [
        "Core: Sources/Core/Core.swift:2: imports Yams, which Core does not declare in Package.swift",
        "Core: declares Yams (module YAML) but none of its 1 Swift files imports it (dead edge)"]


def test_excluded_files_are_not_read():
    m = manifest()
    target(m, "Core")["exclude"] = ["Core.swift"]
    problems, _, files = check_imports.check(FIXTURE, m)
    assert files == 4
    assert problems == [
        "Core: declares Driver (module Driver) but none of its 0 Swift files imports it (dead edge)",
        "Core: declares Yams (module Yams) but none of its 0 Swift files imports it (dead edge)"]


def test_a_target_without_its_directory_is_a_manifest_error():
    m = copy.deepcopy(manifest())
    m["targets"].append({"name": "Missing", "type": "regular", "dependencies": []})
    with pytest.raises(check_imports.ManifestError, match="Missing: no directory Sources/Missing"):
        check_imports.check(FIXTURE, m)


# ------------------------------------------------------------------ the command

def test_the_command_passes_on_the_truthful_fixture():
    result = run_script("truthful.json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok   Package.swift: 5 targets")


def test_the_command_fails_on_both_kinds_of_lie_naming_target_file_line_and_module():
    result = run_script("lying.json")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        ("FAIL Core: Sources/Core/Core.swift:1: imports Driver, which Core does not declare in "
         "Package.swift"),
        ("FAIL CoreTests: declares Driver (module Driver) but none of its 1 Swift files imports it "
         "(dead edge)"),
        "check-imports: FAILED: 1 undeclared imports, 1 dead edges in 5 targets (5 Swift files)",
    ]


def test_an_unreadable_dump_exits_2():
    result = run_script("no-such-dump.json")
    assert result.returncode == 2
    assert "no-such-dump.json" in result.stderr
