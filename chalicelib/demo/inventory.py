"""InventoryStep: reserve stock for this execution, release it again.

Reserving moves a quantity from `available` to `reserved`, so available + reserved per sku is
conserved. Inputs: sku and quantity, or items [{"sku", "quantity"}, ...] for several skus.

Lock order, in both functions: reservation rows of this (execution, step) first, then stock
rows in sorted sku order. Reserve therefore inserts its reservations before it touches stock.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from chalicelib.demo import inputs
from chalicelib.domain.step_context import ActionFn, PermanentError, StepContext


def reserve_inventory(ctx: StepContext) -> dict[str, Any]:
    items = _items(ctx)
    key = (ctx.execution_id, ctx.step_id)
    placeholders = ", ".join(["(%s, %s, %s, %s)"] * len(items))
    ctx.cursor.execute(
        f"INSERT INTO demo_reservations (execution_id, step_id, sku, quantity) "
        f"VALUES {placeholders}",
        tuple(value for sku, quantity in items for value in (*key, sku, quantity)))
    for sku, quantity in items:
        ctx.cursor.execute("SELECT available FROM demo_stock WHERE sku = %s FOR UPDATE", (sku,))
        row = ctx.cursor.fetchone()
        if row is None:
            raise PermanentError(f"unknown sku {sku!r}")
        if row["available"] < quantity:
            raise PermanentError(f"out of stock: sku {sku} has {row['available']} available, "
                                 f"{quantity} requested")
        ctx.cursor.execute("UPDATE demo_stock SET available = available - %s, "
                           "reserved = reserved + %s WHERE sku = %s", (quantity, quantity, sku))
    return {"reserved": [{"sku": sku, "quantity": quantity} for sku, quantity in items]}


def release_inventory(ctx: StepContext) -> dict[str, Any]:
    """Give back what this step reserved in this execution; no reservation -> no-op.

    Locking read: a plain read under REPEATABLE READ could miss the action's reservation."""
    ctx.cursor.execute("SELECT sku, quantity FROM demo_reservations "
                       "WHERE execution_id = %s AND step_id = %s ORDER BY sku FOR UPDATE",
                       (ctx.execution_id, ctx.step_id))
    rows = ctx.cursor.fetchall()
    for row in rows:
        ctx.cursor.execute("UPDATE demo_stock SET available = available + %s, "
                           "reserved = reserved - %s WHERE sku = %s",
                           (row["quantity"], row["quantity"], row["sku"]))
        if ctx.cursor.rowcount != 1:
            # Someone deleted a stock row that still had reservations: needs a human.
            raise PermanentError(f"stock row for sku {row['sku']} is gone; cannot release")
    if rows:
        ctx.cursor.execute("DELETE FROM demo_reservations WHERE execution_id = %s "
                           "AND step_id = %s", (ctx.execution_id, ctx.step_id))
    return {"released": [{"sku": row["sku"], "quantity": row["quantity"]} for row in rows]}


def _items(ctx: StepContext) -> list[tuple[str, int]]:
    """(sku, quantity) pairs, one per sku (repeats summed), sorted by sku."""
    raw_items = inputs.raw(ctx, "items")
    if raw_items is None:
        pairs = [(inputs.text(ctx, "sku"), inputs.parse_quantity(inputs.raw(ctx, "quantity")))]
    elif isinstance(raw_items, list) and 0 < len(raw_items) <= inputs.MAX_ITEMS:
        pairs = [_item(item, n) for n, item in enumerate(raw_items)]
    else:
        raise PermanentError(f"items must be a list of 1 to {inputs.MAX_ITEMS} "
                             f"{{sku, quantity}} objects")
    totals: Counter[str] = Counter()
    for sku, quantity in pairs:
        totals[sku] += quantity
    for sku, quantity in totals.items():
        if quantity > inputs.MAX_QUANTITY:
            raise PermanentError(f"quantity of sku {sku} must be at most {inputs.MAX_QUANTITY}")
    return sorted(totals.items())


def _item(item: Any, n: int) -> tuple[str, int]:
    if not isinstance(item, dict):
        raise PermanentError(f"items[{n}] must be an object with sku and quantity")
    return (inputs.parse_text(item.get("sku"), f"items[{n}].sku"),
            inputs.parse_quantity(item.get("quantity"), f"items[{n}].quantity"))


ACTIONS: dict[str, ActionFn] = {
    "reserve_inventory": reserve_inventory,
    "release_inventory": release_inventory,
}
