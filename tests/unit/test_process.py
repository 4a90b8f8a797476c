"""Process handling of the stack supervisor, on real throwaway processes."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from infra.stack import process

# A child that ignores SIGTERM, so stop() must escalate to SIGKILL; it says when it does.
_STUBBORN = ("import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
             "pathlib.Path(sys.argv[1], 'ready').write_text('1'); time.sleep(60)")


def _spawn_sleeper(tmp_path: Path, code: str = "import time; time.sleep(60)") -> int:
    return process.spawn([sys.executable, "-c", code, str(tmp_path)], env={},
                         log_file=tmp_path / "log", pid_file=tmp_path / "pid").pid


def test_spawned_process_is_owned_only_while_alive_and_marked(tmp_path: Path) -> None:
    pid = _spawn_sleeper(tmp_path)
    try:
        assert process.owned_pid(tmp_path / "pid", str(tmp_path)) == pid
        # Same PID, other marker: a reused PID is not ours.
        assert process.owned_pid(tmp_path / "pid", "/some/other/server") is None
    finally:
        assert process.stop(pid, grace_seconds=5) is False
    assert process.owned_pid(tmp_path / "pid", str(tmp_path)) is None


def test_stop_escalates_to_sigkill_after_the_grace_period(tmp_path: Path) -> None:
    pid = _spawn_sleeper(tmp_path, _STUBBORN)
    deadline = time.monotonic() + 10
    while not (tmp_path / "ready").exists():  # its SIGTERM handler is installed
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.01)
    # It ignores SIGTERM for good, so any grace ends in SIGKILL: the shortest poll will do.
    assert process.stop(pid, grace_seconds=0.1) is True
    assert process.owned_pid(tmp_path / "pid", str(tmp_path)) is None


def test_missing_or_garbage_pid_file_means_not_running(tmp_path: Path) -> None:
    assert process.owned_pid(tmp_path / "absent", "x") is None
    (tmp_path / "pid").write_text("not a pid")
    assert process.owned_pid(tmp_path / "pid", "x") is None


def test_run_reports_the_failing_command_and_its_output(tmp_path: Path) -> None:
    try:
        process.run([sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"])
    except process.StackError as error:
        assert "failed (3)" in str(error)
        assert "boom" in str(error)
    else:
        raise AssertionError("run() accepted a failing command")


def test_a_process_in_the_middle_of_exec_is_still_ours(tmp_path: Path) -> None:
    # The servers' start scripts exec bash, then java; /proc shows an empty command line for
    # a moment during each exec. Checked right after the start, many times over.
    final = f"exec {sys.executable} -c 'import time; time.sleep(30)' {tmp_path}"
    chain = f"exec bash -c \"exec bash -c \\\"{final}\\\"\""
    for _ in range(30):
        child = process.spawn(["bash", "-c", chain], env={"PATH": "/usr/bin:/bin"},
                              log_file=tmp_path / "log", pid_file=tmp_path / "pid")
        try:
            owned = [process.owned_pid(tmp_path / "pid", str(tmp_path)) for _ in range(5)]
        finally:
            # Killed and reaped at once: stop()'s polling has tests of its own above.
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        assert owned == [child.pid] * 5
