"""Durations as the API and config write them: "500ms", "30s", "2m", "1h", "1h30m", "30d"."""

from __future__ import annotations

import re

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")


def parse_duration_ms(text: str) -> int:
    """Milliseconds in a duration string; ValueError says what is wrong."""
    if not isinstance(text, str) or not _WHOLE.fullmatch(text):
        raise ValueError(
            f"invalid duration {text!r}: use a number with a unit ms, s, m, h or d, e.g. '30s'"
        )
    total = sum(float(number) * _UNITS_MS[unit] for number, unit in _PART.findall(text))
    return round(total)


def format_duration_ms(ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        size = _UNITS_MS[unit]
        if ms % size == 0 and ms >= size:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
