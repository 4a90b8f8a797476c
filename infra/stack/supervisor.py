"""Bring the local stack up, report on it, and take it down: only ever the processes it started."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from chalicelib.config import Settings
from infra.stack import process
from infra.stack.paths import StackPaths
from infra.stack.process import StackError
from infra.stack.server import Server
from infra.stack.servers.kafka import Kafka
from infra.stack.servers.localstack import LocalStack
from infra.stack.servers.mariadb import MariaDB
from infra.stack.servers.mongodb import MongoDB

# Servers an earlier version of the stack ran, by PID file name, with a string only their
# command line holds: `up` and `down` stop them, so an upgraded checkout keeps no strays.
RETIRED = {"zookeeper": "zookeeper-server-start", "kafka": "kafka_2.11-0.9.0.1"}

Say = Callable[[str], None]


def build_servers(settings: Settings, paths: StackPaths) -> list[Server]:
    """Every server of the stack, in start order."""
    return [
        MariaDB(paths, settings.database.mysql),
        MongoDB(paths, settings.database.mongodb),
        Kafka(paths, settings.kafka),
        LocalStack(paths, settings.aws),
    ]


@dataclass(frozen=True)
class ServerStatus:
    name: str
    address: str
    state: str  # "healthy", "unhealthy" or "down"
    pid: int | None
    rss_mb: float | None

    def line(self) -> str:
        pid = f"pid {self.pid}" if self.pid else "-"
        rss = f"{self.rss_mb:.0f} MB" if self.rss_mb is not None else ""
        return f"{self.name:<11} {self.state:<10} {self.address:<16} {pid:<10} {rss}".rstrip()


def _rss_mb(pid: int) -> float | None:
    # Resident memory of the server and its children (LocalStack's Lambda processes).
    total_kb = 0
    for each in (pid, *_descendants(pid)):
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        total_kb += sum(int(line.split()[1]) for line in status.splitlines()
                        if line.startswith("VmRSS:"))
    return total_kb / 1024 if total_kb else None


def _descendants(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    found = [int(child) for child in children]
    for child in list(found):
        found += _descendants(child)
    return found


class Supervisor:
    def __init__(self, settings: Settings, paths: StackPaths | None = None,
                 say: Say = print) -> None:
        self.paths = paths or StackPaths.default()
        self.servers = build_servers(settings, self.paths)
        self.say = say

    def select(self, names: Iterable[str] = ()) -> list[Server]:
        wanted = set(names)
        known = {server.name for server in self.servers}
        if unknown := wanted - known:
            raise StackError(f"unknown server(s) {', '.join(sorted(unknown))}; "
                             f"known: {', '.join(s.name for s in self.servers)}")
        if not wanted:
            return list(self.servers)
        return [server for server in self.servers if server.name in wanted]

    # -- up -------------------------------------------------------------------------------

    def up(self, names: Iterable[str] = ()) -> list[ServerStatus]:
        self.paths.ensure()
        self.retire()
        statuses = []
        for server in self.select(names):
            started = time.monotonic()
            if not server.is_installed():
                self.say(f"{server.name:<11} installing ...")
                server.install()
                self.say(f"{server.name:<11} installed in {time.monotonic() - started:.1f}s")
            how = self._ensure_running(server)
            server.bootstrap()
            status = self.status_of(server)
            statuses.append(status)
            self.say(f"{status.line()}  ({how} in {time.monotonic() - started:.1f}s)")
        return statuses

    def _ensure_running(self, server: Server) -> str:
        pid = process.owned_pid(self.paths.pid(server.name), server.marker)
        if pid is not None:
            running = pid
            outcome = self._wait_healthy(server, lambda: process.alive(running),
                                         timeout=server.start_timeout)
            if outcome == "healthy":
                return "already running"
            self.say(f"{server.name:<11} pid {pid} is not healthy; restarting it")
            process.stop(pid, grace_seconds=server.stop_grace)
        if self._port_held(server):
            raise StackError(f"{server.name}: {server.address} is already taken by a process this "
                             "stack did not start; stop it or change the port in the config")
        server.prepare()
        log = self.paths.log(server.name)
        log_offset = log.stat().st_size if log.exists() else 0
        proc = process.spawn(server.command(), env=server.environment(), log_file=log,
                             pid_file=self.paths.pid(server.name), cwd=server.data_dir)
        outcome = self._wait_healthy(server, lambda: proc.poll() is None,
                                     timeout=server.start_timeout)
        if outcome != "healthy":
            if outcome == "exited" and proc.poll() is not None:
                outcome = f"exited with status {proc.returncode}"
            else:
                process.stop(proc.pid, grace_seconds=server.stop_grace)
            raise StackError(f"{server.name} did not start ({outcome}); what it wrote to {log}:\n"
                             f"{self._log_since(log, log_offset, 20)}")
        return "started"

    @staticmethod
    def _log_since(log: Path, offset: int, lines: int) -> str:
        try:
            with open(log, "rb") as handle:
                handle.seek(offset)
                text = handle.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(nothing)"

    @staticmethod
    def _port_held(server: Server, grace_seconds: float = 5.0) -> bool:
        # A process that was just killed can hold its port a moment longer than /proc shows
        # it alive (its other threads are still exiting), so give it a few seconds.
        deadline = time.monotonic() + grace_seconds
        while process.port_open(server.host, server.port):
            if time.monotonic() > deadline:
                return True
            time.sleep(0.1)
        return False

    @staticmethod
    def _wait_healthy(server: Server, running: Callable[[], bool], *, timeout: float) -> str:
        """ "healthy", "exited" or "not healthy after N s"."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not running():
                return "exited"
            if server.is_ready():
                return "healthy"
            time.sleep(0.2)
        return f"not healthy after {timeout:.0f}s"

    # -- status / down / logs ---------------------------------------------------------------

    def status_of(self, server: Server) -> ServerStatus:
        pid = process.owned_pid(self.paths.pid(server.name), server.marker)
        state = "down" if pid is None else "healthy" if server.is_healthy() else "unhealthy"
        return ServerStatus(server.name, server.address, state, pid,
                            _rss_mb(pid) if pid else None)

    def status(self, names: Iterable[str] = ()) -> list[ServerStatus]:
        return [self.status_of(server) for server in self.select(names)]

    def retire(self) -> list[str]:
        """Stop what an earlier version of the stack started and this one no longer runs."""
        retired = []
        for name, marker in RETIRED.items():
            pid_file = self.paths.pid(name)
            pid = process.owned_pid(pid_file, marker)
            if pid is None:
                continue
            process.stop(pid, grace_seconds=15.0)
            if name not in {server.name for server in self.servers}:
                pid_file.unlink(missing_ok=True)
            retired.append(name)
            self.say(f"{name:<11} stopped (pid {pid}): no longer part of the stack")
        return retired

    def down(self, names: Iterable[str] = ()) -> list[str]:
        """Stop the selected servers, dependants first. Returns what was stopped."""
        stopped = [] if names else self.retire()
        selected = self.select(names) if names else list(self.servers)
        for server in reversed(selected):
            pid_file = self.paths.pid(server.name)
            pid = process.owned_pid(pid_file, server.marker)
            if pid is not None:
                killed = process.stop(pid, grace_seconds=server.stop_grace)
                # Down means nothing listens any more: a process whose main thread has ended
                # can hold its port while its other threads exit (a few seconds at most).
                self._port_held(server)
                stopped.append(server.name)
                self.say(f"{server.name:<11} stopped (pid {pid}{', killed' if killed else ''})")
            pid_file.unlink(missing_ok=True)
        return stopped

    def tail(self, name: str, lines: int = 50) -> str:
        log = self.paths.log(name)
        if not log.exists():
            return f"(no log yet at {log})"
        with open(log, "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - 256 * 1024))
            text = handle.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])
