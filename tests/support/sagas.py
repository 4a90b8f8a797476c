"""Saga definitions the tests post."""

from __future__ import annotations

from typing import Any


def one_step_saga(saga_id: str, name: str = "One-step saga") -> dict[str, Any]:
    """A valid definition with a single payment step (and its refund)."""
    step = {"id": "charge", "name": "Charge", "description": "Charge the customer",
            "order": 1, "action": "process_payment", "compensation": "refund_payment",
            "max_retries": 1, "timeout": "30s"}
    return {"id": saga_id, "name": name, "version": "1.0.0",
            "description": "A saga of one payment step", "steps": [step]}
