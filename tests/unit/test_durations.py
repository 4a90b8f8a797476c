from __future__ import annotations

import pytest

from chalicelib.durations import format_duration_ms, parse_duration_ms


@pytest.mark.parametrize(("text", "ms"), [
    ("500ms", 500), ("1s", 1000), ("30s", 30_000), ("2m", 120_000), ("1h", 3_600_000),
    ("1h30m", 5_400_000), ("1.5s", 1500), ("0s", 0),
])
def test_parses_the_documented_units(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "30", "s", "10 sec", "-1s", "1w", "1s ", "abc", "1h-5m"])
def test_rejects_anything_else_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration_ms(text)


@pytest.mark.parametrize("ms", [500, 1000, 90_000, 3_600_000, 1500])
def test_format_round_trips(ms: int) -> None:
    assert parse_duration_ms(format_duration_ms(ms)) == ms
