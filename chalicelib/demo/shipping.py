"""ShippingStep: book a shipment for this execution's order, delete it again.

Inputs: address; carrier (default "demo-post"); shipment_id (default "shp-<execution_id>",
set it when one execution books several shipments); the order id comes from an
earlier step's result (config "order_step" names it, else the last result holding "order_id"),
else from config/input "order_id".
"""

from __future__ import annotations

from typing import Any

from chalicelib.demo import inputs
from chalicelib.demo.db import refuse_duplicates
from chalicelib.domain.step_context import ActionFn, PermanentError, StepContext

DEFAULT_CARRIER = "demo-post"


def create_shipment(ctx: StepContext) -> dict[str, Any]:
    shipment_id = inputs.text(ctx, "shipment_id", default=inputs.derived_id("shp", ctx),
                              max_length=120)
    order_id = _order_id(ctx)
    address = inputs.text(ctx, "address", max_length=500)
    carrier = inputs.text(ctx, "carrier", default=DEFAULT_CARRIER, max_length=50)
    with refuse_duplicates({"PRIMARY": f"shipment {shipment_id} already exists"}):
        ctx.cursor.execute(
            "INSERT INTO demo_shipments (shipment_id, execution_id, step_id, order_id, address, "
            "carrier) VALUES (%s, %s, %s, %s, %s, %s)",
            (shipment_id, ctx.execution_id, ctx.step_id, order_id, address, carrier))
    return {"shipment_id": shipment_id, "order_id": order_id, "carrier": carrier}


def cancel_shipment(ctx: StepContext) -> dict[str, Any]:
    """Delete the shipment this step booked; none -> no-op (locking read: latest commit)."""
    ctx.cursor.execute("SELECT shipment_id FROM demo_shipments WHERE execution_id = %s "
                       "AND step_id = %s FOR UPDATE", (ctx.execution_id, ctx.step_id))
    row = ctx.cursor.fetchone()
    if row is not None:
        ctx.cursor.execute("DELETE FROM demo_shipments WHERE shipment_id = %s",
                           (row["shipment_id"],))
    return {"cancelled": row is not None, "shipment_id": row["shipment_id"] if row else None}


def _order_id(ctx: StepContext) -> str:
    step = ctx.config.get("order_step")
    if step is not None:
        result = ctx.results.get(step)
        if result is None or not result.get("order_id"):
            raise PermanentError(f"step {step!r} has no order_id in its result")
        return inputs.parse_text(result["order_id"], "order_id", max_length=120)
    found = [r["order_id"] for r in ctx.results.values() if r and r.get("order_id")]
    if found:
        return inputs.parse_text(found[-1], "order_id", max_length=120)
    return inputs.text(ctx, "order_id", max_length=120)


ACTIONS: dict[str, ActionFn] = {
    "create_shipment": create_shipment,
    "cancel_shipment": cancel_shipment,
}
