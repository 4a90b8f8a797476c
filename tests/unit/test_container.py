"""The composition roots: built explicitly from settings, with no I/O until a part is used;
each part built once, even under concurrent first use; and importing the app builds nothing."""

from __future__ import annotations

import importlib
import sys
import threading
import time
from pathlib import Path
from typing import Any

from chalicelib.config import load_settings
from chalicelib.roots import runtime
from chalicelib.roots import step_wiring as wiring
from chalicelib.roots.container import Container
from chalicelib.roots.parts import Parts, ProcessRoot, part
from chalicelib.roots.step_wiring import StepContainer

# Ports nothing listens on: a container that connected while being built would fail.
UNREACHABLE = {"SAGA__DATABASE__MYSQL__PORT": "9", "SAGA__KAFKA__BROKERS": "127.0.0.1:9",
               "SAGA__DATABASE__MONGODB__URI": "mongodb://127.0.0.1:9"}


class Counting(Parts):
    def __init__(self) -> None:
        super().__init__()
        self.builds = 0
        self.closed = False

    @part
    def slow(self) -> object:
        self.builds += 1
        time.sleep(0.05)  # long enough for the other threads to arrive while it builds
        return object()

    @part
    def needs_slow(self) -> tuple[object]:
        return (self.slow,)

    def close(self) -> None:
        self.closed = True
        super().close()


def test_a_container_is_built_from_settings_without_touching_a_server() -> None:
    settings = load_settings(environ=UNREACHABLE)
    parts = Container(settings)
    assert parts.settings is settings
    assert parts._parts == {}, "nothing is built before it is used"
    # A part that needs no server is built on first use, and then kept.
    assert parts.openapi_document is parts.openapi_document
    assert list(parts._parts) == ["openapi_document"]


def test_a_part_is_built_once_even_when_threads_ask_at_the_same_time() -> None:
    parts = Counting()
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(parts.slow)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)
    assert parts.builds == 1 and len(got) == 8 and len({id(g) for g in got}) == 1
    # A part that needs another builds it under the same (reentrant) lock.
    assert parts.needs_slow == (got[0],)


def test_provided_parts_stand_in_for_built_ones() -> None:
    fake = object()
    parts = Counting().provide(slow=fake)
    assert parts.slow is fake and parts.builds == 0
    assert parts.needs_slow == (fake,)


def test_the_process_root_builds_on_first_use_and_leaves_what_it_replaces_open() -> None:
    made: list[Counting] = []
    root: ProcessRoot[Counting] = ProcessRoot(lambda: made.append(Counting()) or made[-1])
    assert made == []
    first = root.get()
    assert root.get() is first and len(made) == 1
    replacement = Counting()
    root.use(replacement)
    # Workers built from the first may still use its clients: closing it is its owner's call.
    assert not first.closed and root.get() is replacement
    root.use(None)
    assert root.get() is made[-1] and len(made) == 2


def test_the_step_container_is_lean_and_explicit() -> None:
    settings = load_settings(environ=UNREACHABLE)
    steps = StepContainer(settings)
    assert steps._parts == {}
    fake: Any = object()
    assert steps.provide(attempt_runner=fake).attempt_runner is fake
    assert wiring.PROCESS is not runtime.PROCESS


def test_importing_the_app_builds_no_container_and_no_aws_session() -> None:
    runtime.use(None)
    root = str(Path(__file__).parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    sys.modules.pop("app", None)
    app_module = importlib.import_module("app")
    assert runtime.PROCESS._current is None
    assert app_module.app.websocket_api.session is None
