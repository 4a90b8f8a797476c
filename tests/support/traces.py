"""What an execution left behind: its events in the outbox, in order, and its effects on the
demo tables (none, once it is compensated)."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.demo import demo_data
from chalicelib.roots import runtime

# demo_data.left_behind of an execution every effect of which was undone.
NOTHING_LEFT = {"ledger_net": {}, "reservations": [], "orders": [], "shipments": [],
                "users": [], "unretracted_notifications": []}


def outbox_events(execution_id: str) -> list[dict[str, Any]]:
    with runtime.container().connector.transaction() as cur:
        cur.execute("SELECT envelope FROM outbox WHERE partition_key = %s ORDER BY sequence",
                    (execution_id,))
        return [json.loads(row["envelope"]) for row in cur.fetchall()]


def left_behind(execution_id: str) -> dict[str, Any]:
    with runtime.container().connector.transaction() as cur:
        return demo_data.left_behind(cur, execution_id)
