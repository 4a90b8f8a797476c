"""UserStep: register a user for this execution, delete it again.

Inputs: email (unique across users); user_id (default "usr-<execution_id>"); name, optional.
"""

from __future__ import annotations

from typing import Any

from chalicelib.demo import inputs
from chalicelib.demo.db import refuse_duplicates
from chalicelib.domain.step_context import ActionFn, StepContext


def create_user(ctx: StepContext) -> dict[str, Any]:
    user_id = inputs.text(ctx, "user_id", default=inputs.derived_id("usr", ctx), max_length=120)
    email = inputs.email(ctx)
    name = inputs.optional_text(ctx, "name", max_length=200)
    with refuse_duplicates({"PRIMARY": f"user {user_id} already exists",
                            "users_by_email": f"email {email} is already registered"}):
        ctx.cursor.execute(
            "INSERT INTO demo_users (user_id, execution_id, step_id, email, name) "
            "VALUES (%s, %s, %s, %s, %s)",
            (user_id, ctx.execution_id, ctx.step_id, email, name))
    return {"user_id": user_id, "email": email}


def delete_user(ctx: StepContext) -> dict[str, Any]:
    """Delete the user this step created; none -> no-op (locking read: latest commit)."""
    ctx.cursor.execute("SELECT user_id FROM demo_users WHERE execution_id = %s "
                       "AND step_id = %s FOR UPDATE", (ctx.execution_id, ctx.step_id))
    row = ctx.cursor.fetchone()
    if row is not None:
        ctx.cursor.execute("DELETE FROM demo_users WHERE user_id = %s", (row["user_id"],))
    return {"deleted": row is not None, "user_id": row["user_id"] if row else None}


ACTIONS: dict[str, ActionFn] = {
    "create_user": create_user,
    "delete_user": delete_user,
}
