"""Printing and saving benchmark figures (no settings, no servers: safe to import anywhere)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from infra.text_table import format_table

RESULTS = Path(__file__).parent / "results"


def table(rows: list[list[Any]], header: list[str]) -> str:
    return format_table(rows, header, rule=True)


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")
    return path
