#!/usr/bin/env bash
# Fuzzes the scenario parser, the threshold expression parser and the API request reader (api/fuzz-corpus/) with libFuzzer (the Swift
# toolchain's -sanitize=fuzzer), each for FUZZ_SECONDS (default 60), from a corpus seeded with
# Scenarios/. Findings (crashing inputs) land in .run/fuzz/findings/; the grown corpora stay in
# .run/fuzz/corpus-*/ for the next run. If libFuzzer cannot be built here, runs the seeded random
# mutator (the same targets and invariants) for the same time instead, and says so.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
seconds=${FUZZ_SECONDS:-60}
work=.run/fuzz
mkdir -p "$work/findings"

seed_corpus() {
    local target=$1 dir="$work/corpus-$1"
    mkdir -p "$dir"
    if [ "$target" = scenario ]; then
        cp Scenarios/*.yaml "$dir/"
    elif [ "$target" = request ]; then
        cp api/fuzz-corpus/*.txt "$dir/"
    else
        # One input per threshold of the shipped scenarios: the metric target, a newline, the expression.
        local n=0
        while IFS= read -r line; do
            metric=$(printf '%s' "$line" | sed -E 's/^ *([^:]+(\{[^}]*\})?): *\[.*$/\1/')
            printf '%s\n%s' "$metric" "$(printf '%s' "$line" | sed -E 's/^[^[]*\["([^"]*)".*$/\1/')" >"$dir/threshold-$n.txt"
            n=$((n + 1))
        done < <(grep -hE '^  [a-z_]+(\{[^}]*\})?: *\["' Scenarios/*.yaml | sort -u)
        printf 'latency\np(95) < 200ms' >"$dir/threshold-default.txt"
    fi
}

status=0
if swift build --scratch-path .build/fuzz -c release -Xswiftc -sanitize=fuzzer -Xswiftc -DLOCKPROOF_LIBFUZZER \
    -Xlinker --allow-multiple-definition --product lockproof-fuzz >"$work/build.log" 2>&1; then
    binary=.build/fuzz/release/lockproof-fuzz
    for target in scenario threshold request; do
        seed_corpus "$target"
        echo "fuzz: libFuzzer on the $target parser for $seconds s"
        # SWIFT_BACKTRACE off: Swift's crash handler would take the signal before libFuzzer saves the input.
        if ! SWIFT_BACKTRACE=enable=no LOCKPROOF_FUZZ_TARGET=$target "$binary" "$work/corpus-$target" -max_total_time="$seconds" -max_len=65536 \
            -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$work/findings/$target-" \
            >"$work/$target.log" 2>&1; then
            status=1
            echo "fuzz: FINDING in the $target parser; input saved in $work/findings/ (log: $work/$target.log)"
        fi
        grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/$target.log" | sed 's/^/  /' || true
        echo "  corpus: $(ls "$work/corpus-$target" | wc -l) inputs"
    done
else
    echo "fuzz: libFuzzer build failed (see $work/build.log); running the seeded random mutator instead"
    swift build --product lockproof-fuzz >/dev/null
    end=$((SECONDS + 2 * seconds))
    seed=1
    while [ $SECONDS -lt $end ]; do
        .build/debug/lockproof-fuzz --iterations 2000 --seed $seed Scenarios || { status=1; break; }
        .build/debug/lockproof-fuzz --iterations 2000 --seed $seed --target request api/fuzz-corpus || { status=1; break; }
        seed=$((seed + 1))
    done
fi
exit $status
