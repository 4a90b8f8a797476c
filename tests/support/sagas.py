"""Saga definitions the tests post."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

SEED: dict[str, Any] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())


def seed_copy(prefix: str, **step_changes: dict[str, Any]) -> dict[str, Any]:
    """The documented example under a fresh id, with some steps changed."""
    definition = copy.deepcopy(SEED)
    definition["id"] = f"{prefix}-{uuid.uuid4().hex[:10]}"
    for step in definition["steps"]:
        step.update(step_changes.get(step["id"], {}))
    return definition


def one_step_saga(saga_id: str, name: str = "One-step saga") -> dict[str, Any]:
    """A valid definition with a single payment step (and its refund)."""
    step = {"id": "charge", "name": "Charge", "description": "Charge the customer",
            "order": 1, "action": "process_payment", "compensation": "refund_payment",
            "max_retries": 1, "timeout": "30s"}
    return {"id": saga_id, "name": name, "version": "1.0.0",
            "description": "A saga of one payment step", "steps": [step]}
