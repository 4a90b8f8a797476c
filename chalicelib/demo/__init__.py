"""The built-in actions and compensations, by name, and the family each belongs to.

Each family (one module) is deployed as its own Lambda; every function works only through the
step's transaction (ctx.cursor) on the demo tables of migration 0003.
"""

from __future__ import annotations

from collections.abc import Mapping

from chalicelib.demo import inventory, notification, order, payment, shipping, user
from chalicelib.domain.step_context import ActionFn

FAMILIES: dict[str, Mapping[str, ActionFn]] = {
    "payment": payment.ACTIONS,
    "order": order.ACTIONS,
    "inventory": inventory.ACTIONS,
    "shipping": shipping.ACTIONS,
    "notification": notification.ACTIONS,
    "user": user.ACTIONS,
}


def _merge(families: Mapping[str, Mapping[str, ActionFn]]) -> dict[str, ActionFn]:
    merged: dict[str, ActionFn] = {}
    for family, actions in families.items():
        for name, function in actions.items():
            # A name in two families would make the routing to a Lambda ambiguous.
            if name in merged:
                raise ValueError(f"action {name!r} of family {family!r} is defined twice")
            merged[name] = function
    return merged


BUILTIN_ACTIONS: dict[str, ActionFn] = _merge(FAMILIES)
FAMILY_OF: dict[str, str] = {name: family for family, actions in FAMILIES.items()
                             for name in actions}

__all__ = ["BUILTIN_ACTIONS", "FAMILIES", "FAMILY_OF"]
