#!/usr/bin/env python3
"""Checks that Package.swift declares exactly the modules each target's Swift files import.

SwiftPM lets a file import any module its target reaches through a declared dependency, so the
manifest can drift from the code without a build failing (its
--explicit-target-dependency-import-check accepts transitive modules too). This check compares
`swift package dump-package` with the `import` lines of every target's Swift files and fails on:

  - an undeclared import: a module that is not a system module and that no direct dependency of
    the importing target provides (reaching it through another dependency does not count);
  - a dead edge: a declared dependency none of whose modules any file of the target imports.

What counts as an import (see `imports_in`):
  - `import X`, `import X.Sub`, `import struct X.Y` (and the other kinds): module X;
  - with attributes and access modifiers before it: `@testable`, `@_implementationOnly`,
    `@_exported`, `@preconcurrency`, `@_spi(Name)`, `public`/`package`/`internal`/... import;
  - inside `#if` blocks, every branch alike: conditions are not evaluated, because the manifest
    must hold for every configuration (`#if canImport(Glibc)`, `#if LOCKPROOF_LIBFUZZER`). So an
    import of a package module under `#if canImport(M)` must still be declared: otherwise it
    compiles in only while M happens to be reachable through another dependency;
  - not in comments, nor in string literals (multi-line, raw and interpolated strings included).
C shims are modules like any other: `import CLibPQ` must be declared by the importing target, and a
target declaring CLibPQ without importing it has a dead edge. SwiftPM links a system library into
every product that reaches it through any path, so removing such an edge never breaks linking.

Products are mapped to the modules they make importable with PRODUCT_MODULES; a product missing
there is assumed to provide the module of its own name (the common case), and if that is wrong
the check reports both an undeclared import and a dead edge, pointing at the table.

Usage: scripts/check_imports.py [--package-path DIR] [--dump FILE]
Exits 0 when the manifest tells the truth, 1 on any undeclared import or dead edge, 2 when the
manifest or a target's sources cannot be read.
"""

import argparse
import json
import os
import re
import subprocess
import sys

# Modules of the toolchain and the platform: never declared in Package.swift.
SYSTEM_MODULES = frozenset({
    "Swift", "_Concurrency", "_StringProcessing", "_Backtracing", "RegexBuilder", "Observation",
    "Distributed", "Synchronization", "Cxx", "CxxStdlib", "SwiftShims",
    "Foundation", "FoundationEssentials", "FoundationInternationalization",
    "FoundationNetworking", "FoundationXML", "CoreFoundation", "Dispatch",
    "Glibc", "Musl", "Bionic", "Android", "Darwin", "WinSDK", "ucrt", "CRT", "WASILibc", "os",
    "XCTest", "Testing", "PackageDescription", "PackagePlugin",
})

# Product name → the modules it provides (each product's `targets:` in its package's manifest).
PRODUCT_MODULES = {
    "ArgumentParser": ("ArgumentParser",),
    "Logging": ("Logging",),
    "Prometheus": ("Prometheus",),
    "Yams": ("Yams",),
    "Histogram": ("Histogram",),
}

# Where SwiftPM looks for a target without an explicit `path:`.
SOURCE_DIRECTORIES = ("Sources", "Source", "src", "srcs")
TEST_DIRECTORIES = ("Tests",) + SOURCE_DIRECTORIES
CHECKED_TYPES = ("regular", "executable", "test", "macro")

IMPORT = re.compile(
    r"""^\s*
    (?:(?:@\w+(?:\([^)]*\))?|public|package|internal|fileprivate|private|open)\s+)*
    import\s+
    (?:(?:typealias|struct|class|enum|protocol|let|var|func)\s+)?
    `?([A-Za-z_]\w*)`?""",
    re.VERBOSE,
)


class ManifestError(Exception):
    """The manifest or a target's sources cannot be read (exit 2)."""


def c99name(name):
    """The module name SwiftPM gives a target (`lockproof-fuzz` → `lockproof_fuzz`)."""
    module = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return "_" + module if module[:1].isdigit() else module


def strip_comments_and_strings(text):
    """The text with comments and the contents of string literals blanked, newlines kept.

    Handles nested block comments, multi-line ("\"\"\"") and raw (#"..."#) strings, escapes, string
    interpolation with strings inside it, and extended regex literals (#/.../#). A bare /regex/
    holding a double quote is not recognised (none in this code base).
    """
    out = []
    n = len(text)
    i = 0
    # Each entry is ("code", paren depth, inside an interpolation) or ("string", hashes, multi-line).
    stack = [("code", 0, False)]

    def blank(segment):
        out.append(re.sub(r"[^\n]", " ", segment))

    while i < n:
        mode = stack[-1]
        c = text[i]
        if mode[0] == "code":
            if text.startswith("//", i):
                end = text.find("\n", i)
                end = n if end < 0 else end
                blank(text[i:end])
                i = end
            elif text.startswith("/*", i):
                depth, j = 1, i + 2
                while j < n and depth:
                    if text.startswith("/*", j):
                        depth, j = depth + 1, j + 2
                    elif text.startswith("*/", j):
                        depth, j = depth - 1, j + 2
                    else:
                        j += 1
                blank(text[i:j])
                i = j
            elif c in "#\"":
                hashes = len(text[i:]) - len(text[i:].lstrip("#"))
                j = i + hashes
                if text.startswith('"', j):
                    multi = text.startswith('"""', j)
                    j += 3 if multi else 1
                    blank(text[i:j])
                    stack.append(("string", hashes, multi))
                    i = j
                elif hashes and text.startswith("/", j):
                    close = "/" + "#" * hashes
                    end = text.find(close, j + 1)
                    end = n if end < 0 else end + len(close)
                    blank(text[i:end])
                    i = end
                else:
                    out.append(text[i:j or i + 1])
                    i = j or i + 1
            elif c == "(":
                stack[-1] = ("code", mode[1] + 1, mode[2])
                out.append(c)
                i += 1
            elif c == ")" and mode[1] == 0 and mode[2]:
                stack.pop()
                out.append(" ")
                i += 1
            elif c == ")":
                stack[-1] = ("code", max(mode[1] - 1, 0), mode[2])
                out.append(c)
                i += 1
            else:
                out.append(c)
                i += 1
        else:
            _, hashes, multi = mode
            escape = "\\" + "#" * hashes
            close = ('"""' if multi else '"') + "#" * hashes
            if text.startswith(escape + "(", i):
                blank(text[i:i + len(escape) + 1])
                stack.append(("code", 0, True))
                i += len(escape) + 1
            elif text.startswith(escape, i):
                blank(text[i:i + len(escape) + 1])
                i += len(escape) + 1
            elif text.startswith(close, i):
                blank(close)
                stack.pop()
                i += len(close)
            else:
                blank(c)
                i += 1
    return "".join(out)


def imports_in(text):
    """[(line number, module)] for every import declaration of a Swift source text."""
    found = []
    for number, line in enumerate(strip_comments_and_strings(text).splitlines(), 1):
        for statement in line.split(";"):
            match = IMPORT.match(statement)
            if match:
                found.append((number, match.group(1)))
    return found


def dependency_modules(dependency, target_names):
    """(declared name, modules it provides) for one entry of a target's `dependencies`."""
    if "target" in dependency:
        name = dependency["target"][0]
        return name, (c99name(name),)
    if "product" in dependency:
        name, _package, aliases = dependency["product"][:3]
        modules = PRODUCT_MODULES.get(name, (c99name(name),))
        aliases = aliases or {}
        return name, tuple(aliases.get(module, module) for module in modules)
    if "byName" in dependency:
        name = dependency["byName"][0]
        if name in target_names:
            return name, (c99name(name),)
        return name, PRODUCT_MODULES.get(name, (c99name(name),))
    raise ManifestError(f"unknown dependency form {json.dumps(dependency)}")


def target_directory(root, target):
    if target.get("path"):
        directory = os.path.join(root, target["path"])
        if not os.path.isdir(directory):
            raise ManifestError(f"target {target['name']}: path {target['path']} is not a directory")
        return directory
    parents = TEST_DIRECTORIES if target["type"] == "test" else SOURCE_DIRECTORIES
    for parent in parents:
        directory = os.path.join(root, parent, target["name"])
        if os.path.isdir(directory):
            return directory
    raise ManifestError(f"target {target['name']}: no directory {parents[0]}/{target['name']}")


def swift_files(root, target):
    """The target's Swift files, as paths relative to the package root, sorted."""
    directory = target_directory(root, target)
    excluded = [os.path.normpath(os.path.join(directory, e)) for e in target.get("exclude") or []]
    included = [os.path.normpath(os.path.join(directory, s)) for s in target.get("sources") or []]

    def under(path, prefixes):
        return any(path == p or path.startswith(p + os.sep) for p in prefixes)

    files = []
    for parent, _dirs, names in os.walk(directory):
        for name in names:
            path = os.path.normpath(os.path.join(parent, name))
            if not name.endswith(".swift") or under(path, excluded):
                continue
            if included and not under(path, included):
                continue
            files.append(os.path.relpath(path, root))
    return sorted(files)


def check(root, manifest):
    """The problems found, each one line, and the number of targets and files checked."""
    targets = manifest.get("targets") or []
    target_names = {t["name"] for t in targets}
    problems = []
    checked_targets = checked_files = 0
    for target in targets:
        if target.get("type") not in CHECKED_TYPES:
            continue
        name = target["name"]
        declared = [dependency_modules(d, target_names) for d in target.get("dependencies") or []]
        provided = {module for _, modules in declared for module in modules}
        files = swift_files(root, target)
        checked_targets += 1
        checked_files += len(files)
        # module → [(file, line)] of every place that imports it
        imported = {}
        for path in files:
            try:
                with open(os.path.join(root, path), encoding="utf-8") as source:
                    text = source.read()
            except (OSError, UnicodeDecodeError) as error:
                raise ManifestError(f"{path}: cannot read: {error}") from error
            for line, module in imports_in(text):
                imported.setdefault(module, []).append((path, line))
        for module, places in sorted(imported.items()):
            if module in SYSTEM_MODULES or module in provided or module == c99name(name):
                continue
            path, line = places[0]
            others = len({p for p, _ in places}) - 1
            more = f" (and {others} more file{'s' if others != 1 else ''})" if others else ""
            problems.append(f"{name}: {path}:{line}: imports {module}, which {name} does not "
                            f"declare in Package.swift{more}")
        for dependency, modules in declared:
            if not any(module in imported for module in modules):
                problems.append(f"{name}: declares {dependency} (module {', '.join(modules)}) "
                                f"but none of its {len(files)} Swift files imports it (dead edge)")
    return problems, checked_targets, checked_files


def load_manifest(root, dump_path):
    if dump_path:
        try:
            with open(dump_path, encoding="utf-8") as dump:
                return json.load(dump)
        except (OSError, ValueError) as error:
            raise ManifestError(f"{dump_path}: {error}") from error
    try:
        result = subprocess.run(["swift", "package", "--package-path", root, "dump-package"],
                                capture_output=True, text=True, check=False)
    except OSError as error:
        raise ManifestError(f"swift package dump-package: {error}") from error
    if result.returncode != 0:
        raise ManifestError("swift package dump-package failed: " + result.stderr.strip())
    try:
        return json.loads(result.stdout)
    except ValueError as error:
        raise ManifestError(f"swift package dump-package printed no JSON: {error}") from error


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Fails when a target imports a module it does not declare in Package.swift, "
                    "or declares a dependency it never imports.")
    parser.add_argument("--package-path", default=os.path.join(os.path.dirname(__file__), ".."),
                        help="the package root (default: this repository)")
    parser.add_argument("--dump", help="a saved `swift package dump-package` JSON instead of "
                                       "running swift")
    args = parser.parse_args(argv)
    root = os.path.normpath(args.package_path)
    try:
        problems, targets, files = check(root, load_manifest(root, args.dump))
    except ManifestError as error:
        print(f"check-imports: {error}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"FAIL {problem}")
    undeclared = sum("(dead edge)" not in p for p in problems)
    if problems:
        print(f"check-imports: FAILED: {undeclared} undeclared imports, "
              f"{len(problems) - undeclared} dead edges in {targets} targets ({files} Swift files)")
        return 1
    print(f"ok   Package.swift: {targets} targets declare exactly what their {files} Swift files import")
    return 0


if __name__ == "__main__":
    sys.exit(main())
