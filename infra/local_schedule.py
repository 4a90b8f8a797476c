"""Schedules as local threads: what EventBridge runs on AWS (the cleanup), `saga serve` runs
on a timer next to the API."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from chalicelib.config import Settings

logger = logging.getLogger(__name__)


class PeriodicTask:
    """Runs `task` every `interval_s` seconds (the first run one interval after start) on a
    daemon thread, until stop(). A failing run is logged and the next one still happens."""

    def __init__(self, name: str, interval_s: float, task: Callable[[], Any]) -> None:
        if interval_s <= 0:
            raise ValueError(f"{name}: the interval must be longer than 0s")
        self.name = name
        self.interval_s = interval_s
        self.task = task
        self.runs = 0  # runs that ended without an error
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> PeriodicTask:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.task()
            except Exception:  # a schedule outlives one failed run, as EventBridge's does
                self.failures += 1
                logger.exception("%s failed; next run in %ss", self.name, self.interval_s)
            else:
                self.runs += 1

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout_s)


def cleanup_timer(settings: Settings,
                  run: Callable[[Settings], Any] | None = None) -> PeriodicTask:
    """The cleanup every saga.cleanup_interval: the process's Container's (`run` stands in
    for it in tests)."""
    from chalicelib.usecases.cleanup import cleanup_interval_seconds

    job = run or _real_cleanup
    return PeriodicTask("cleanup", cleanup_interval_seconds(settings), lambda: job(settings))


def _real_cleanup(_: Settings) -> Any:
    """The cleanup of the process's Container (the timer's settings only set its pace)."""
    from chalicelib.roots import runtime
    from chalicelib.usecases.ports import Actor

    return runtime.container().cleanup.run(Actor(name="schedule"))
