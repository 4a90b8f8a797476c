"""`saga executions history`: pages read up to --limit, and a table people can scan."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from infra.cli_history import history, read_history


class PagedApi:
    """GET .../history answered from a list, `limit` at a time (the cursor: the next index)."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.paths: list[str] = []

    def call(self, method: str, path: str, body: Any = None) -> Any:
        from urllib.parse import parse_qs, urlsplit

        self.paths.append(path)
        query = parse_qs(urlsplit(path).query)
        start = int(query.get("cursor", ["0"])[0])
        end = start + int(query["limit"][0])
        return {"items": self.items[start:end],
                "next_cursor": str(end) if end < len(self.items) else None}


def _event(n: int, **more: Any) -> dict[str, Any]:
    return {"sequence": n, "type": "saga.step.failed", "time": "2026-12-07T09:30:00.123456+00:00",
            "step_id": "charge", "attempt": n, "actor": None, "reason": None, "error": None,
            "data": {}, **more}


def test_a_long_history_is_read_a_page_at_a_time_up_to_the_limit() -> None:
    api = PagedApi([_event(n) for n in range(1, 251)])
    items, cursor = read_history(api, "x 1", 230)  # type: ignore[arg-type]
    assert [i["sequence"] for i in items] == list(range(1, 231)) and cursor == "230"
    assert [p.split("?")[0] for p in api.paths] == ["/executions/x%201/history"] * 3


def test_the_table_shows_when_with_its_zone_who_and_why(
        capsys: pytest.CaptureFixture[str]) -> None:
    api = PagedApi([_event(1, error={"type": "Declined", "message": "no funds"}),
                    _event(2, type="saga.resolved", step_id=None, attempt=None,
                           actor="alice", reason="refunded by hand")])
    args = argparse.Namespace(id="x1", limit=50, json=False)
    assert history(args, api) == 0  # type: ignore[arg-type]
    header, failed, resolved = capsys.readouterr().out.splitlines()
    assert header.split() == ["TIME", "EVENT", "STEP", "ATTEMPT", "BY", "REASON", "/", "ERROR"]
    assert "2026-12-07T09:30:00.123Z" in failed and "Declined: no funds" in failed
    assert resolved.split()[2:] == ["-", "-", "alice", "refunded", "by", "hand"]
