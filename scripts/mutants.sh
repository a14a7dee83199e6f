#!/usr/bin/env bash
# make mutants: the mutant catalog (Tests/Mutants/*.patch) against `lockproof verify`.
#
# One scratch copy of the checkout (.run/mutants/scratch, its own .build, reused so that each
# release build is incremental). For each mutant: restore the scratch copy to the checkout's files
# as they were at the start, apply the patch (a patch that no longer applies is an error), build the release
# `lockproof`, run `lockproof verify --fail-fast` MUTANTS_RUNS times (default 3) and count the
# runs that failed: a mutant is killed only when every run failed. Unit tests are never run:
# the question is what `lockproof verify` alone catches.
#
# Which scenarios: first the folder Scenarios/ of the mutant's `Killer:` files (a subset of
# Scenarios/: when it fails, `verify Scenarios/` fails too, since each scenario starts from a
# clean database); when that does not kill it in every run, all of Scenarios/. MUTANTS_FULL=1
# always runs all of Scenarios/. MUTANTS_ONLY=regex (e.g. 'fencing|split') runs the mutants whose
# name matches; the baseline then covers their Killer: scenarios only.
#
# Prints a table (mutant, what it breaks, killed by which scenario and checker or threshold, runs
# killed) and the score. Exit 0 when every non-equivalent mutant was killed, 1 when one survived,
# 2 when a patch does not apply, a mutant does not build, the unmutated baseline fails, or a run
# ends in a usage or server error. Run inside scripts/with-services.sh (servers up).
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
catalog="$root/Tests/Mutants"
work="$root/.run/mutants"
scratch="$work/scratch"
runs=${MUTANTS_RUNS:-3}
only=${MUTANTS_ONLY:-}
full=${MUTANTS_FULL:-0}
started=$(date +%s)

if [ -z "${LOCKPROOF_DATABASE_URL:-}" ] || [ -z "${LOCKPROOF_REDIS_URL:-}" ]; then
    echo "mutants: run me inside scripts/with-services.sh (or set LOCKPROOF_DATABASE_URL and LOCKPROOF_REDIS_URL)" >&2
    exit 2
fi
shopt -s nullglob
patches=("$catalog"/*.patch)
if [ ${#patches[@]} -eq 0 ]; then
    echo "mutants: no patches in $catalog" >&2
    exit 2
fi

mkdir -p "$scratch"
# Its own (empty) git repository, so that `git apply` there never reaches this checkout's.
[ -d "$scratch/.git" ] || git -C "$scratch" init -q
# The checkout's files (tracked and untracked, not ignored: no build products, reports or git
# metadata) as they were when the run started, with their times, so that a file a previous mutant
# changed is put back and edits made in the checkout meanwhile do not leak into the run.
pristine="$work/pristine.tar"
(cd "$root" && git ls-files -z -co --exclude-standard | tar --null -T - -cf -) >"$pristine"
sync_scratch() {
    (cd "$scratch" && tar -xf "$pristine")
}

field() {  # field NAME FILE: the value of a `Name: value` header line of a patch
    sed -n "s/^$1: *//p" "$2" | head -n 1
}

build() {
    (cd "$scratch" && swift build -c release --product lockproof >"$work/build.log" 2>&1)
}

# verify FOLDER: runs verify once; sets verdict_status and killer ("scenario: checks/thresholds").
verify() {
    local folder=$1 out="$work/verify.out"
    (cd "$scratch" && .build/release/lockproof verify "$folder" --fail-fast --quiet --wait-for-database 60 >"$out" 2>"$work/verify.err")
    verdict_status=$?
    killer=$(awk '/^scenario: /{name=$2} /^verdict: (FAIL|ERROR)/{sub(/^verdict: /, ""); print name ": " $0; exit}' "$out")
    # A run aborted (a hang, a lost server) prints no verdict for its scenario: say what stopped it.
    [ -n "$killer" ] || killer=$(grep -m 1 "^lockproof: error:" "$work/verify.err" | cut -c 18-200)
}

# The subset folder of a mutant's Killer: scenarios (links into the scratch copy's Scenarios/).
killer_folder() {
    local patch=$1 folder="$work/killers" name
    rm -rf "$folder"
    mkdir -p "$folder"
    for name in $(field Killer "$patch"); do
        if [ ! -f "$scratch/Scenarios/$name" ]; then
            echo "mutants: $(basename "$patch"): Killer: $name is not a file of Scenarios/" >&2
            return 1
        fi
        ln -s "$scratch/Scenarios/$name" "$folder/$name"
    done
    [ -n "$(ls -A "$folder")" ] || return 1
    echo "$folder"
}

errors=0
echo "mutants: scratch copy $scratch, $runs runs per mutant"
sync_scratch
if ! build; then
    echo "mutants: the unmutated checkout does not build:" >&2
    tail -n 30 "$work/build.log" >&2
    exit 2
fi
# Baseline: the unmutated code must pass, or every mutant would look killed. With MUTANTS_ONLY,
# the selected mutants' Killer: scenarios (a survivor still falls back to all of Scenarios/).
baseline="$scratch/Scenarios"
if [ -n "$only" ]; then
    baseline="$work/baseline"
    rm -rf "$baseline"
    mkdir -p "$baseline"
    for patch in "${patches[@]}"; do
        name=$(field Mutant "$patch")
        [[ "$name" =~ $only ]] || continue
        for file in $(field Killer "$patch"); do
            [ -f "$scratch/Scenarios/$file" ] && ln -sf "$scratch/Scenarios/$file" "$baseline/$file"
        done
    done
    [ -n "$(ls -A "$baseline")" ] || baseline="$scratch/Scenarios"
fi
verify "$baseline"
if [ "$verdict_status" -ne 0 ]; then
    echo "mutants: the unmutated checkout fails verify (exit $verdict_status, $killer): fix that first" >&2
    exit 2
fi
echo "mutants: baseline verify passed ($(($(date +%s) - started)) s)"

rows=()
killed=0
survived=0
equivalent=0
for patch in "${patches[@]}"; do
    name=$(field Mutant "$patch")
    [ -n "$name" ] || name=$(basename "$patch" .patch)
    if [ -n "$only" ] && ! [[ "$name" =~ $only ]]; then continue; fi
    breaks=$(field Breaks "$patch")
    reason=$(field Equivalent "$patch")
    mutant_started=$(date +%s)
    sync_scratch
    if ! (cd "$scratch" && git apply --check "$patch" 2>"$work/apply.err"); then
        echo "mutants: $name: THE PATCH NO LONGER APPLIES ($(basename "$patch")): $(head -n 3 "$work/apply.err" | tr '\n' ' ')" >&2
        rows+=("$name|$breaks|PATCH DOES NOT APPLY|-|ERROR")
        errors=$((errors + 1))
        continue
    fi
    (cd "$scratch" && git apply "$patch")
    if [ -n "$reason" ]; then
        rows+=("$name|$breaks|equivalent: $reason|-|EQUIVALENT")
        equivalent=$((equivalent + 1))
        continue
    fi
    if ! build; then
        echo "mutants: $name: THE MUTANT DOES NOT BUILD:" >&2
        grep -m 5 "error:" "$work/build.log" >&2
        rows+=("$name|$breaks|MUTANT DOES NOT BUILD|-|ERROR")
        errors=$((errors + 1))
        continue
    fi
    folders=()
    if [ "$full" != 1 ] && subset=$(killer_folder "$patch"); then folders+=("$subset"); fi
    folders+=("$scratch/Scenarios")
    for folder in "${folders[@]}"; do
        hits=0
        killers=()
        broken=""
        for ((run = 1; run <= runs; run++)); do
            verify "$folder"
            case "$verdict_status" in
                0) ;;
                1) hits=$((hits + 1)); killers+=("$killer") ;;
                *) broken="exit $verdict_status: $(head -n 2 "$work/verify.err" | tr '\n' ' ')" ;;
            esac
            # A run that passed already makes it a survivor of this folder: no need for more.
            [ "$verdict_status" -eq 0 ] && break
            [ -n "$broken" ] && break
        done
        [ "$hits" -eq "$runs" ] && break
    done
    where=$([ "$folder" = "$scratch/Scenarios" ] && echo "Scenarios/" || echo "Killer: scenarios")
    seconds=$(($(date +%s) - mutant_started))
    if [ -n "$broken" ]; then
        echo "mutants: $name: verify could not run ($broken)" >&2
        rows+=("$name|$breaks|VERIFY ERROR ($broken)|-|ERROR")
        errors=$((errors + 1))
    elif [ "$hits" -eq "$runs" ]; then
        rows+=("$name|$breaks|${killers[0]} [$where]|$hits/$runs|killed (${seconds} s)")
        killed=$((killed + 1))
    else
        rows+=("$name|$breaks|${killers[0]:-nothing} [$where]|$hits/$runs|SURVIVED (${seconds} s)")
        survived=$((survived + 1))
    fi
    echo "mutants: $name: ${rows[-1]##*|}"
done
sync_scratch

echo
echo "| mutant | breaks | killed by (scenario: checker or threshold) | runs killed | verdict |"
echo "|---|---|---|---|---|"
for row in "${rows[@]}"; do echo "| ${row//|/ | } |"; done
scored=$((killed + survived))
echo
echo "mutants: score $killed/$scored killed ($equivalent equivalent, $errors errors), $(($(date +%s) - started)) s"
[ "$errors" -eq 0 ] || exit 2
[ "$survived" -eq 0 ] || exit 1
exit 0
