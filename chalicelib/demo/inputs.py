"""Reading and checking an action's inputs: the step's config overrides the saga's input.

Every malformed or missing value is a PermanentError: retrying the same input cannot help.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from chalicelib.domain.step_context import PermanentError, StepContext

# DECIMAL(18,2): 16 digits before the point.
MAX_AMOUNT = Decimal("9999999999999999.99")
_CENT = Decimal("0.01")
MAX_QUANTITY = 1_000_000
MAX_ITEMS = 100
_CURRENCY = re.compile(r"[A-Z]{3}")
# Deliberately loose: one @, something on each side, a dot in the domain, no spaces.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def raw(ctx: StepContext, key: str) -> Any:
    """config[key] if set, else saga_input[key], else the stage's demo default (local stages
    only: see saga.demo_input_defaults); None when none has it."""
    for source in (ctx.config, ctx.saga_input, ctx.defaults):
        value = source.get(key)
        if value is not None:
            return value
    return None


def text(ctx: StepContext, key: str, *, default: str | None = None,
         max_length: int = 100) -> str:
    value = raw(ctx, key)
    if value is None and default is not None:
        return default
    return parse_text(value, key, max_length=max_length)


def optional_text(ctx: StepContext, key: str, *, max_length: int = 100) -> str | None:
    value = raw(ctx, key)
    return None if value is None else parse_text(value, key, max_length=max_length)


def parse_text(value: Any, key: str, *, max_length: int = 100) -> str:
    if value is None:
        raise PermanentError(f"{key} is required")
    if not isinstance(value, str) or not value.strip():
        raise PermanentError(f"{key} must be a non-empty string, got {value!r}")
    value = value.strip()
    if len(value) > max_length:
        raise PermanentError(f"{key} must be at most {max_length} characters")
    return value


def amount(ctx: StepContext, key: str = "amount") -> Decimal:
    return parse_amount(raw(ctx, key), key)


def optional_amount(ctx: StepContext, key: str = "amount") -> Decimal | None:
    value = raw(ctx, key)
    return None if value is None else parse_amount(value, key)


def parse_amount(value: Any, key: str = "amount") -> Decimal:
    """A positive decimal with at most 2 places, from a string or a JSON number."""
    if value is None:
        raise PermanentError(f"{key} is required")
    # bool is an int subclass; True is not an amount.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PermanentError(f"{key} must be a decimal string or number, got {value!r}")
    try:
        # str() first so a float such as 25.1 means "25.1", not its binary expansion.
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise PermanentError(f"{key} is not a decimal number: {value!r}") from None
    if not number.is_finite() or number <= 0:
        raise PermanentError(f"{key} must be a positive amount, got {value!r}")
    # Bound first: quantize() raises on numbers wider than the decimal context.
    if number > MAX_AMOUNT:
        raise PermanentError(f"{key} must be at most {MAX_AMOUNT}, got {value!r}")
    cents = number.quantize(_CENT)
    if cents != number:
        raise PermanentError(f"{key} must have at most 2 decimal places, got {value!r}")
    return cents


def currency(ctx: StepContext, key: str = "currency") -> str:
    return parse_currency(raw(ctx, key), key)


def optional_currency(ctx: StepContext, key: str = "currency") -> str | None:
    value = raw(ctx, key)
    return None if value is None else parse_currency(value, key)


def parse_currency(value: Any, key: str = "currency") -> str:
    if value is None:
        raise PermanentError(f"{key} is required")
    code = value.strip().upper() if isinstance(value, str) else None
    if code is None or not _CURRENCY.fullmatch(code):
        raise PermanentError(f"{key} must be a 3-letter currency code, got {value!r}")
    return code


def parse_quantity(value: Any, key: str = "quantity") -> int:
    """A positive whole number, from an int or a string of digits."""
    if value is None:
        raise PermanentError(f"{key} is required")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise PermanentError(f"{key} must be a whole number, got {value!r}")
    if not 0 < value <= MAX_QUANTITY:
        raise PermanentError(f"{key} must be between 1 and {MAX_QUANTITY}, got {value!r}")
    return value


def email(ctx: StepContext, key: str = "email") -> str:
    value = parse_text(raw(ctx, key), key, max_length=254)
    if not _EMAIL.fullmatch(value):
        raise PermanentError(f"{key} is not an email address: {value!r}")
    return value


def derived_id(prefix: str, ctx: StepContext) -> str:
    """A deterministic id for what this execution creates, so a retry names the same thing."""
    return f"{prefix}-{ctx.execution_id}"
