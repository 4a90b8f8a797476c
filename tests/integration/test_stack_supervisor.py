"""The supervisor on a second, throwaway stack (other ports), so the shared one is untouched."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from chalicelib.config import load_settings
from infra.stack import process
from infra.stack.paths import StackPaths
from infra.stack.servers.kafka import BROKER_MAIN, STORAGE_TOOL_MAIN, Kafka
from infra.stack.supervisor import Supervisor

MONGO_PORT, KAFKA_PORT, CONTROLLER_PORT = 27117, 19092, 19093


@pytest.fixture
def side_stack(tmp_path: Path, local_stack: Supervisor) -> Iterator[Supervisor]:
    root = tmp_path / "stack"
    root.mkdir()
    # Share the installs of the main stack; everything else (data, logs, PIDs) is private.
    (root / "opt").symlink_to(local_stack.paths.opt)
    settings = load_settings(environ={
        **os.environ,
        "SAGA__DATABASE__MONGODB__URI": f"mongodb://127.0.0.1:{MONGO_PORT}/?replicaSet=rs0",
        "SAGA__KAFKA__BROKERS": f"127.0.0.1:{KAFKA_PORT}",
        "SAGA__KAFKA__CONTROLLER": f"127.0.0.1:{CONTROLLER_PORT}",
    })
    supervisor = Supervisor(settings, StackPaths(root), say=lambda line: None)
    yield supervisor
    supervisor.down()


def _pids(supervisor: Supervisor) -> dict[str, int | None]:
    return {status.name: status.pid for status in supervisor.status(["mongodb", "kafka"])}


def test_up_is_idempotent_restores_a_killed_server_and_down_leaves_nothing(
    side_stack: Supervisor,
) -> None:
    first = side_stack.up(["mongodb", "kafka"])
    assert [s.state for s in first] == ["healthy", "healthy"]
    pids = _pids(side_stack)

    side_stack.up(["mongodb", "kafka"])
    assert _pids(side_stack) == pids, "a second up must not restart anything"

    mongo_pid = pids["mongodb"]
    assert mongo_pid is not None
    os.kill(mongo_pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and side_stack.status(["mongodb"])[0].state != "down":
        time.sleep(0.1)
    assert side_stack.status(["mongodb"])[0].state == "down"

    side_stack.up(["mongodb", "kafka"])
    after = _pids(side_stack)
    assert after["kafka"] == pids["kafka"], "only the dead server is restarted"
    assert after["mongodb"] not in (None, mongo_pid)
    assert side_stack.status(["mongodb"])[0].state == "healthy"

    stopped = side_stack.down()
    assert sorted(stopped) == ["kafka", "mongodb"]
    for pid in after.values():
        assert pid is not None
        assert not Path(f"/proc/{pid}").exists() or process.is_zombie(pid)
    for port in (MONGO_PORT, KAFKA_PORT, CONTROLLER_PORT):
        assert not process.port_open("127.0.0.1", port), f"port {port} still listening"
    assert [s.state for s in side_stack.status(["mongodb", "kafka"])] == ["down", "down"]


def test_up_refuses_a_port_taken_by_a_foreign_process(side_stack: Supervisor) -> None:
    with socket.socket() as squatter:
        # The earlier test's Kafka may have left the port in TIME_WAIT.
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", KAFKA_PORT))
        squatter.listen()
        with pytest.raises(process.StackError, match="already taken"):
            side_stack.up(["kafka"])


def test_unknown_server_names_are_refused(side_stack: Supervisor) -> None:
    with pytest.raises(process.StackError, match="unknown server"):
        side_stack.up(["postgres"])


def test_the_installed_kafka_jars_hold_the_broker_and_formatter_main_classes(
        local_stack: Supervisor) -> None:
    kafka = next(server for server in local_stack.servers if server.name == "kafka")
    assert isinstance(kafka, Kafka)
    assert kafka.main_classes() == {BROKER_MAIN, STORAGE_TOOL_MAIN}
    # KRaft: one process is broker and controller, on the two configured listeners.
    assert process.port_open(kafka.host, kafka.port)
    assert process.port_open(kafka.controller_host, kafka.controller_port)


def test_up_stops_a_zookeeper_the_earlier_stack_left_running(side_stack: Supervisor) -> None:
    side_stack.paths.ensure()
    # Stands in for the ZooKeeper of the old stack: a process whose command line says so.
    stray = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)",
                              "bin/zookeeper-server-start.sh"], start_new_session=True)
    try:
        pid_file = side_stack.paths.pid("zookeeper")
        pid_file.write_text(str(stray.pid))
        assert side_stack.retire() == ["zookeeper"]
        assert stray.wait(timeout=20) is not None
        assert not pid_file.exists()
        assert side_stack.retire() == [], "nothing left to stop"
    finally:
        if stray.poll() is None:
            stray.kill()
            stray.wait(timeout=10)
