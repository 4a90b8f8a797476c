"""The cleanup: what nothing needs any more is removed (POST /cleanup, a schedule on AWS, a
timer in `saga serve`), and how often it runs on its own (config saga.cleanup_interval)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib.config import Settings
from chalicelib.durations import parse_duration_ms

# Named in signatures only: app.py reads the schedule's rate from here as it loads.
if TYPE_CHECKING:
    from chalicelib.usecases.ports import Actor, CleanupStore, Engine


@dataclass
class Cleanup:
    store: CleanupStore
    engine: Engine

    def run(self, actor: Actor) -> dict[str, Any]:
        """Remove what nothing needs any more; the machines of removed versions go too."""
        report = self.store.run(actor)
        by_saga: dict[str, list[int]] = {}
        for saga_id, revision in report.orphan_versions:
            by_saga.setdefault(saga_id, []).append(revision)
        for saga_id, revisions in by_saga.items():
            self.engine.discard(saga_id, revisions)
        return {"removed": {"idempotency_records": report.idempotency_records,
                            "published_events": report.published_events,
                            "orphan_versions": [{"saga_id": s, "revision": r}
                                                for s, r in report.orphan_versions]}}


def cleanup_interval_seconds(settings: Settings) -> float:
    """How often cleanup runs on its own (config saga.cleanup_interval)."""
    seconds = parse_duration_ms(settings.saga.cleanup_interval) / 1000
    if seconds <= 0:
        raise ValueError("config key saga.cleanup_interval must be longer than 0s")
    return seconds


def cleanup_schedule_minutes(settings: Settings) -> int:
    """The interval as an EventBridge rate, whose finest unit is a minute (rounded up)."""
    return max(1, int(-(-cleanup_interval_seconds(settings) // 60)))
