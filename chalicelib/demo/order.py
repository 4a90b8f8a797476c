"""OrderStep: create an order row for this execution, delete it again.

The compensation deletes rather than marks "cancelled" so that the table is exactly as it was.
Inputs: customer_id; order_id (default "ord-<execution_id>", set it when one execution creates
several orders); amount and currency, optional.
"""

from __future__ import annotations

from typing import Any

from chalicelib.demo import inputs
from chalicelib.demo.db import refuse_duplicates
from chalicelib.domain.step_context import ActionFn, StepContext


def create_order(ctx: StepContext) -> dict[str, Any]:
    order_id = inputs.text(ctx, "order_id", default=inputs.derived_id("ord", ctx),
                           max_length=120)
    customer = inputs.text(ctx, "customer_id")
    amount = inputs.optional_amount(ctx)
    currency = inputs.optional_currency(ctx)
    with refuse_duplicates({"PRIMARY": f"order {order_id} already exists"}):
        ctx.cursor.execute(
            "INSERT INTO demo_orders (order_id, execution_id, step_id, customer_id, amount, "
            "currency) VALUES (%s, %s, %s, %s, %s, %s)",
            (order_id, ctx.execution_id, ctx.step_id, customer, amount, currency))
    return {"order_id": order_id, "customer_id": customer,
            "amount": None if amount is None else str(amount), "currency": currency}


def cancel_order(ctx: StepContext) -> dict[str, Any]:
    """Delete the order this step created; none -> no-op. The locking read sees the latest
    commit (a REPEATABLE READ snapshot might predate the action's)."""
    ctx.cursor.execute("SELECT order_id FROM demo_orders WHERE execution_id = %s "
                       "AND step_id = %s FOR UPDATE", (ctx.execution_id, ctx.step_id))
    row = ctx.cursor.fetchone()
    if row is not None:
        ctx.cursor.execute("DELETE FROM demo_orders WHERE order_id = %s", (row["order_id"],))
    return {"cancelled": row is not None, "order_id": row["order_id"] if row else None}


ACTIONS: dict[str, ActionFn] = {
    "create_order": create_order,
    "cancel_order": cancel_order,
}
