"""How the `saga` command writes what the API answers for a person: times in ISO 8601 with
their zone, errors, counts by status and rates on one line, and where the next page starts.
(`--json` prints the API's own answer instead.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any


def when(value: Any) -> str:
    """An API time as ISO 8601 in UTC to the second, with its zone ("2026-12-07T14:31:20Z");
    one without a zone is UTC; "-" for none, the text as it came when it is no time."""
    if value in (None, ""):
        return "-"
    try:
        at = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    at = (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def error_text(error: dict[str, Any] | None) -> str:
    """"process-payment (action) PaymentDeclined: card refused": an execution's or a step's
    error on one line."""
    if not error:
        return "-"
    where = " ".join(part for part in (
        str(error["step_id"]) if error.get("step_id") else "",
        f"({error['phase']})" if error.get("phase") else "") if part)
    said = f"{error.get('type') or 'Error'}: {error.get('message') or ''}".rstrip(": ")
    failed = error.get("failed_steps")
    if failed:
        said += f" (compensation failed for {', '.join(failed)})"
    return f"{where} {said}" if where else said


def by_status(counts: dict[str, Any] | None) -> str:
    """"17 COMPLETED, 1 COMPENSATED": counts by status, largest first."""
    if not counts:
        return "none"
    return ", ".join(f"{n} {status}" for status, n in
                     sorted(counts.items(), key=lambda item: (-int(item[1]), item[0])))


def rate(value: Any) -> str:
    """A success rate (0 to 1) as a percentage; "-" when there is none yet."""
    if value is None:
        return "-"
    return f"{float(value) * 100:.1f} %"


def more(next_cursor: str | None, command: str) -> str:
    """The line that says a listing has more pages, and how to ask for the next one."""
    return f"\nmore: {command} --cursor {next_cursor}" if next_cursor else ""


def inline_json(value: str) -> Any | None:
    """A value of --input or --faults given inline: one that starts with `{` or `[` is JSON
    (None: it is a path, or `-` for standard input). ValueError says what is wrong with it."""
    if not value.lstrip().startswith(("{", "[")):
        return None
    try:
        data = json.loads(value)
    except json.JSONDecodeError as error:
        raise ValueError(f"the inline JSON is not valid: {error.msg} (column {error.colno})"
                         ) from None
    return data
