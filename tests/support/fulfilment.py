"""The order-fulfilment example (examples/order-fulfilment): a fresh copy of the saga, and an
order whose stock is seeded for it."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

from chalicelib.demo import demo_data
from chalicelib.roots import runtime

EXAMPLE: dict[str, Any] = json.loads(
    (Path(__file__).parents[2] / "examples" / "order-fulfilment" / "saga.json").read_text())


def fulfilment_saga(api: Any, prefix: str) -> str:
    """Stores the example under a fresh id (api: the e2e Api); returns the id."""
    definition = copy.deepcopy(EXAMPLE)
    definition["id"] = f"{prefix}-{uuid.uuid4().hex[:8]}"
    return str(api.create_saga(definition)["id"])


def order_input(customer: str) -> dict[str, Any]:
    """An order of 2 of a fresh SKU with 10 in stock."""
    sku = f"SKU-{uuid.uuid4().hex[:6]}"
    with runtime.container().connector.transaction() as cur:
        demo_data.seed_stock(cur, sku, 10)
    return {"customer_id": customer, "amount": "30.00", "currency": "EUR", "sku": sku,
            "quantity": 2, "address": "1 Main St", "email": f"{customer}@example.com"}
