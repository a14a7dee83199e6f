#!/usr/bin/env python3
"""Writes one cell's derived pgbench script and its `-D name=value` definitions from bench.json.

scripts/profile-client.sh runs pgbench on the same statements as a LockProof strategy; the
benchmark stores them in bench.json (docs/schemas/bench.schema.json) under `pgbench_scripts` and
`pgbench_definitions`, keyed by `case/strategy/contention`.

Usage: scripts/pgbench_script.py BENCH_JSON KEY SCRIPT_OUT DEFINITIONS_OUT
DEFINITIONS_OUT gets pgbench arguments one a line (`-D`, then `name=value`), sorted by name, for
the shell's `mapfile`. Exits 0 when written, 1 when bench.json has no script for KEY, 2 when
BENCH_JSON cannot be read.
"""

import json
import sys


def script_and_definitions(report, key):
    """The pgbench script for `key` and its definitions as pgbench arguments; KeyError if none."""
    script = report["pgbench_scripts"][key]
    definitions = report.get("pgbench_definitions", {}).get(key, {})
    arguments = []
    for name, value in sorted(definitions.items()):
        arguments += ["-D", f"{name}={value}"]
    return script, arguments


def main(argv):
    if len(argv) != 5:
        print("usage: pgbench_script.py BENCH_JSON KEY SCRIPT_OUT DEFINITIONS_OUT", file=sys.stderr)
        return 2
    bench_json, key, script_out, definitions_out = argv[1:]
    try:
        with open(bench_json, encoding="utf-8") as source:
            report = json.load(source)
    except (OSError, ValueError) as error:
        print(f"pgbench_script: cannot read {bench_json}: {error}", file=sys.stderr)
        return 2
    try:
        script, arguments = script_and_definitions(report, key)
    except (KeyError, TypeError, AttributeError):
        print(f"pgbench_script: {bench_json} has no pgbench_scripts entry {key!r}", file=sys.stderr)
        return 1
    with open(script_out, "w", encoding="utf-8") as out:
        out.write(script)
    with open(definitions_out, "w", encoding="utf-8") as out:
        out.write("".join(argument + "\n" for argument in arguments))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
