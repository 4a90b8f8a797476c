"""NotificationStep: record a sent message, and a retraction as its compensation.

The one exception to "compensated means back to where it was": a message cannot be unsent, so
cancel_notification appends a 'retraction' instead of deleting. The checkable invariant is that
every message sent for a compensated execution has a retraction (demo_data.snapshot lists
the sent messages that have none).
Inputs: recipient, else email, else customer_id; channel (default "email"); message, optional.
"""

from __future__ import annotations

from typing import Any

from chalicelib.demo import inputs
from chalicelib.domain.step_context import ActionFn, PermanentError, StepContext

DEFAULT_CHANNEL = "email"


def send_notification(ctx: StepContext) -> dict[str, Any]:
    recipient = _recipient(ctx)
    channel = inputs.text(ctx, "channel", default=DEFAULT_CHANNEL, max_length=20)
    message = inputs.text(ctx, "message", max_length=1000,
                          default=f"{ctx.saga_id}: {ctx.step_id} done ({ctx.execution_id})")
    _insert(ctx, recipient, channel, message, "sent")
    return {"recipient": recipient, "channel": channel, "kind": "sent"}


def cancel_notification(ctx: StepContext) -> dict[str, Any]:
    """Retract what this step sent; nothing sent (or already retracted) -> no-op."""
    ctx.cursor.execute("SELECT recipient, channel, message, kind FROM demo_notifications "
                       "WHERE execution_id = %s AND step_id = %s FOR UPDATE",
                       (ctx.execution_id, ctx.step_id))
    rows = {row["kind"]: row for row in ctx.cursor.fetchall()}
    sent = rows.get("sent")
    if sent is None or "retraction" in rows:
        return {"retracted": False}
    message = f"Please disregard our earlier message: {sent['message']}"[:1000]
    _insert(ctx, sent["recipient"], sent["channel"], message, "retraction")
    return {"retracted": True, "recipient": sent["recipient"]}


def _recipient(ctx: StepContext) -> str:
    for key in ("recipient", "email", "customer_id"):
        if inputs.raw(ctx, key) is not None:
            return inputs.text(ctx, key, max_length=254)
    raise PermanentError("recipient is required (or email, or customer_id)")


def _insert(ctx: StepContext, recipient: str, channel: str, message: str, kind: str) -> None:
    ctx.cursor.execute(
        "INSERT INTO demo_notifications (execution_id, step_id, recipient, channel, message, "
        "kind) VALUES (%s, %s, %s, %s, %s, %s)",
        (ctx.execution_id, ctx.step_id, recipient, channel, message, kind))


ACTIONS: dict[str, ActionFn] = {
    "send_notification": send_notification,
    "cancel_notification": cancel_notification,
}
