"""saga.cleanup_interval: a timer in `saga serve`, a schedule on AWS."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from chalicelib.config import Settings, load_settings
from chalicelib.usecases.cleanup import cleanup_interval_seconds, cleanup_schedule_minutes
from infra.local_schedule import PeriodicTask, cleanup_timer


def _settings(interval: str) -> Settings:
    return load_settings(environ={"SAGA__SAGA__CLEANUP_INTERVAL": interval})


def test_serve_runs_the_cleanup_at_the_configured_interval() -> None:
    calls: list[float] = []
    done = threading.Event()

    def fake_cleanup(settings: Settings) -> None:
        assert settings.saga.cleanup_interval == "50ms"
        calls.append(time.monotonic())
        if len(calls) >= 3:
            done.set()

    started = time.monotonic()
    timer = cleanup_timer(_settings("50ms"), run=fake_cleanup).start()
    try:
        assert done.wait(5), f"only {len(calls)} cleanups ran"
    finally:
        timer.stop()
    assert calls[0] - started >= 0.045  # the first run waits one interval
    gaps = [later - earlier for earlier, later in itertools.pairwise(calls)]
    assert all(gap >= 0.045 for gap in gaps), gaps
    count = len(calls)
    time.sleep(0.15)
    assert len(calls) == count  # stopped means stopped


def test_a_failing_run_does_not_end_the_timer() -> None:
    runs = threading.Event()
    attempts: list[int] = []

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) >= 2:
            runs.set()
        raise RuntimeError("database away")

    timer = PeriodicTask("cleanup", 0.02, flaky).start()
    try:
        assert runs.wait(5)
    finally:
        timer.stop()
    assert timer.failures >= 2 and timer.runs == 0


def test_the_interval_and_its_schedule_come_from_the_key() -> None:
    assert cleanup_interval_seconds(load_settings(environ={})) == 3600
    assert cleanup_schedule_minutes(load_settings(environ={})) == 60
    assert cleanup_schedule_minutes(_settings("15m")) == 15
    assert cleanup_schedule_minutes(_settings("90s")) == 2  # EventBridge counts in minutes
    assert cleanup_schedule_minutes(_settings("50ms")) == 1
    with pytest.raises(ValueError, match="cleanup_interval"):
        cleanup_interval_seconds(_settings("0s"))
