"""Start, find and stop the stack's server processes by PID.

A PID file alone is not proof: PIDs get reused. Each server has a marker (a path only its
command line contains), and a PID counts as ours only while /proc/PID/cmdline still holds it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state letter follows the parenthesised command name.
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def owned_pid(pid_file: Path, marker: str) -> int | None:
    """The PID from pid_file if that process is alive and still ours, else None."""
    pid = read_pid(pid_file)
    if pid is None or is_zombie(pid):
        return None
    # A process in the middle of exec (the servers' scripts exec bash, then java) shows an
    # empty command line for a moment: look again before calling it someone else's.
    for _ in range(20):
        line = cmdline(pid)
        if line or not alive(pid):
            break
        time.sleep(0.05)
    return pid if marker in line else None


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    log_file: Path,
    pid_file: Path,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start argv detached in its own session, output appended to log_file; record its PID."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pid_file.parent.mkdir(parents=True, exist_ok=True)
    pid_file.write_text(f"{proc.pid}\n")
    return proc


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not is_zombie(pid)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    # Servers run in their own session, so the group id is their PID: this also reaches
    # helpers they forked (LocalStack's Lambda processes, for one).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def stop(pid: int, *, grace_seconds: float = 15.0) -> bool:
    """SIGTERM the process group, then SIGKILL after grace_seconds. True if it had to be killed."""
    _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_seconds
    while time.monotonic() < deadline:
        if not alive(pid):
            _reap(pid)
            return False
        time.sleep(0.1)
    _signal_group(pid, signal.SIGKILL)
    for _ in range(50):
        if not alive(pid):
            break
        time.sleep(0.1)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    # Only matters when the supervisor itself is the parent (tests); harmless otherwise.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, timeout: float = 900,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run an install/bootstrap command; raise with its output when it fails."""
    result = subprocess.run(
        list(argv), env=dict(env) if env is not None else None, cwd=cwd, timeout=timeout,
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise StackError(f"command failed ({result.returncode}): {' '.join(argv)}\n  "
                         + "\n  ".join(tail))
    return result


class StackError(RuntimeError):
    """Something in the local stack could not be installed, started or checked."""
