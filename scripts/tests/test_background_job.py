"""Tests of scripts/background-job.sh (make verify's background monitoring check): the idle file
lets the caller go on before the job ends, a job's exit status comes back, a job that outlives
its bound is stopped and fails. Real processes (sleep, sh); bounds are generous, no timing is
asserted beyond "did not wait for the whole sleep"."""

import os
import subprocess
import time

LIB = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "background-job.sh"))


def alive(pid):
    """Whether process `pid` exists and is not a zombie (an orphan's reaper may be slow)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def bash(script, tmp_path, timeout=60):
    """Runs `script` after sourcing the library; returns (exit status, stdout, stderr)."""
    done = subprocess.run(
        ["bash", "-c", f'set -uo pipefail\n. "{LIB}"\n{script}'],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=tmp_path,
    )
    return done.returncode, done.stdout, done.stderr


def test_wait_idle_returns_at_the_idle_file_while_the_job_runs_and_finish_returns_its_status(tmp_path):
    status, out, err = bash(
        """
        bg_start job.log sh -c 'echo started; sleep 1; : > idle; sleep 3; echo done; exit 3'
        bg_wait_idle idle $(($(date +%s) + 30)) || exit 90
        bg_running && echo "running at idle"
        bg_finish job $(($(date +%s) + 30))
        echo "finish $?"
        bg_finish job $(($(date +%s) + 30))
        echo "again $?"
        cat job.log
        """,
        tmp_path,
    )
    assert status == 0, err
    assert out.splitlines() == ["running at idle", "finish 3", "again 3", "started", "done"]


def test_wait_idle_returns_when_the_job_ends_without_the_idle_file(tmp_path):
    began = time.monotonic()
    status, out, err = bash(
        """
        bg_start job.log sh -c 'exit 2'
        bg_wait_idle idle $(($(date +%s) + 30)) && echo "went on"
        bg_finish job $(($(date +%s) + 30))
        echo "finish $?"
        """,
        tmp_path,
    )
    assert status == 0, err
    assert out.splitlines() == ["went on", "finish 2"]
    assert time.monotonic() - began < 25, "waited for the bound instead of the job's end"


def test_a_job_past_its_bound_is_reported_stopped_and_fails(tmp_path):
    status, out, err = bash(
        """
        bg_start job.log sh -c 'echo $$ > pid; exec sleep 300'
        bg_wait_idle idle $(($(date +%s) + 2)) || echo "not idle"
        bg_finish hung-job $(($(date +%s) + 1))
        echo "finish $?"
        bg_running || echo "stopped"
        """,
        tmp_path,
    )
    assert status == 0, err
    assert out.splitlines() == ["not idle", "finish 124", "stopped"]
    assert "hung-job did not end within" in err and "it hangs" in err
    pid = int((tmp_path / "pid").read_text())
    assert not alive(pid), "the hung job still runs"


def test_bg_stop_ends_a_job_left_running_by_an_interrupted_caller(tmp_path):
    status, _, err = bash(
        """
        trap bg_stop EXIT
        bg_start job.log sh -c 'echo $$ > pid; exec sleep 300'
        while [ ! -s pid ]; do sleep 0.1; done
        exit 5
        """,
        tmp_path,
    )
    assert status == 5, err
    pid = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 10
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(pid), "the job outlived its caller"
