# Sourced by scripts/verify.sh: one command run in the background, its output in a file (printed
# as one block later, not interleaved with the stages), waited for with a bound. A job that
# outlives its bound is stopped (TERM, then KILL) and counts as failed, so a hang cannot keep
# verify waiting. Tested by scripts/tests/test_background_job.py.

bg_pid=
bg_started=
bg_status=

# bg_start LOG COMMAND...: starts COMMAND, stdout and stderr to LOG.
bg_start() {
    local log=$1
    shift
    bg_started=$(date +%s)
    bg_status=
    "$@" >"$log" 2>&1 &
    bg_pid=$!
}

bg_running() { [ -n "$bg_pid" ] && [ -z "$bg_status" ] && kill -0 "$bg_pid" 2>/dev/null; }

# bg_stop: for an EXIT trap: a job still running when the caller ends (interrupted) is stopped.
bg_stop() { if bg_running; then kill -TERM "$bg_pid" 2>/dev/null; fi; }

# bg_wait_idle FILE DEADLINE: returns 0 once FILE exists or the job has ended, 1 at DEADLINE
# (seconds since the epoch) with the job still running and FILE absent.
bg_wait_idle() {
    local file=$1 deadline=$2
    while bg_running && [ ! -e "$file" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || return 1
        sleep 0.5
    done
    return 0
}

# bg_finish NAME DEADLINE: the job's exit status once it has ended; at DEADLINE, says that NAME
# hangs, stops it and returns 124 (as timeout(1) does). Again after the first call: that status.
bg_finish() {
    local name=$1 deadline=$2
    if [ -n "$bg_status" ]; then return "$bg_status"; fi
    while kill -0 "$bg_pid" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.5; done
    if kill -0 "$bg_pid" 2>/dev/null; then
        echo "verify: $name did not end within $((deadline - bg_started)) s of its start: it hangs; stopping it" >&2
        kill -TERM "$bg_pid" 2>/dev/null
        # Its own clean-up (stopping what it started) gets a few seconds.
        for _ in $(seq 40); do kill -0 "$bg_pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$bg_pid" 2>/dev/null
        wait "$bg_pid" 2>/dev/null
        bg_status=124
    else
        wait "$bg_pid"
        bg_status=$?
    fi
    return "$bg_status"
}
