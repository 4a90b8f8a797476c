"""`saga executions history ID`: an execution's events as a table for people (when, with its
zone; what; which step and attempt; who acted; why, or what went wrong), or `--json`."""

from __future__ import annotations

import argparse
import json
import urllib.parse
from datetime import UTC, datetime
from typing import Any

from infra.api_client import ApiClient
from infra.exit_codes import Exit
from infra.text_table import format_table

# The API's largest page: longer histories are read a page at a time up to --limit.
_PAGE = 100
_REASON_WIDTH = 80


def history(args: argparse.Namespace, api: ApiClient) -> int:
    items, cursor = read_history(api, args.id, args.limit)
    body = {"execution_id": args.id, "items": items, "next_cursor": cursor}
    if args.json:
        print(json.dumps(body, indent=2))
        return Exit.OK
    print(history_table(items))
    if cursor:
        print(f"(more events: --limit {args.limit + _PAGE} shows more)")
    return Exit.OK


def read_history(api: ApiClient, execution_id: str,
                 limit: int) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` events from the first, and the cursor after them (None: no more)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    path = f"/executions/{urllib.parse.quote(execution_id, safe='')}/history"
    while len(items) < limit:
        query = [("limit", str(min(_PAGE, limit - len(items))))]
        if cursor:
            query.append(("cursor", cursor))
        page = api.call("GET", f"{path}?{urllib.parse.urlencode(query)}")
        items += page["items"]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return items, cursor


def history_table(items: list[dict[str, Any]]) -> str:
    rows = [[_when(item["time"]), item["type"], item.get("step_id") or "-",
             item["attempt"] if item.get("attempt") else "-", item.get("actor") or "-",
             _why(item)] for item in items]
    return format_table(rows, ["TIME", "EVENT", "STEP", "ATTEMPT", "BY", "REASON / ERROR"])


def _when(value: str) -> str:
    """The event's time as the CLI writes times (ISO 8601 in UTC, with its zone), to the
    millisecond: events of one second keep their order readable."""
    at = datetime.fromisoformat(value).astimezone(UTC)
    return f"{at.strftime('%Y-%m-%dT%H:%M:%S')}.{at.microsecond // 1000:03d}Z"


def _why(item: dict[str, Any]) -> str:
    parts = []
    if item.get("reason"):
        parts.append(str(item["reason"]))
    error = item.get("error") or {}
    if error:
        parts.append(f"{error.get('type')}: {error.get('message')}")
    text = " | ".join(parts) or "-"
    return text if len(text) <= _REASON_WIDTH else f"{text[:_REASON_WIDTH - 1]}…"
