"""`saga serve`'s cleanup timer runs the real cleanup against the stack."""

from __future__ import annotations

import time

from chalicelib.config import Settings
from infra.local_schedule import cleanup_timer


def test_the_timer_runs_the_real_cleanup_at_a_short_interval(settings: Settings) -> None:
    short = settings.model_copy(update={
        "saga": settings.saga.model_copy(update={"cleanup_interval": "200ms"})})
    timer = cleanup_timer(short).start()
    try:
        deadline = time.monotonic() + 20
        while timer.runs < 2 and timer.failures == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        timer.stop()
    assert timer.failures == 0
    assert timer.runs >= 2
