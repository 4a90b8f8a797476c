"""PaymentStep: check a customer's funds, move money to a merchant, refund it.

Money is conserved: a charge or refund moves an amount between two accounts and writes one
ledger row per side, so the sum of all balances never changes and each account's ledger net
equals its balance change. Inputs: customer_id (the paying account), amount, currency;
merchant_account (config or input, default "merchant").

Lock order, in every function that writes: ledger rows of this (execution, step) first, then
the accounts one by one in sorted id order. One fixed order means charges and refunds running
concurrently wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from chalicelib.demo import inputs
from chalicelib.domain.step_context import ActionFn, Cursor, PermanentError, StepContext

DEFAULT_MERCHANT = "merchant"


def validate_payment(ctx: StepContext) -> dict[str, Any]:
    """Refuse early what process_payment would refuse. No effect (it locks nothing either:
    process_payment checks again under lock)."""
    account, amount, currency = _charge_of(ctx)
    ctx.cursor.execute("SELECT balance, currency FROM demo_accounts WHERE account_id = %s",
                       (account,))
    _check_can_pay(ctx.cursor.fetchone(), account, amount, currency)
    return {"validated": True, "account_id": account, "amount": str(amount),
            "currency": currency}


def cancel_payment(ctx: StepContext) -> dict[str, Any]:
    """validate_payment changed nothing, so there is nothing to undo."""
    return {"cancelled": True}


def process_payment(ctx: StepContext) -> dict[str, Any]:
    customer, amount, currency = _charge_of(ctx)
    merchant = inputs.text(ctx, "merchant_account", default=DEFAULT_MERCHANT)
    if merchant == customer:
        raise PermanentError(f"account {customer} cannot pay itself")
    # Ledger first (see the module's lock order); a refusal below rolls these rows back.
    _post(ctx, payer=customer, payee=merchant, amount=amount, currency=currency, kind="charge")
    accounts = _lock_accounts(ctx.cursor, [customer, merchant])
    _check_can_pay(accounts.get(customer), customer, amount, currency)
    payee = accounts.get(merchant)
    if payee is None:
        raise PermanentError(f"unknown merchant account {merchant!r}")
    if payee["currency"] != currency:
        raise PermanentError(f"merchant account {merchant} holds {payee['currency']}, "
                             f"not {currency}")
    _move(ctx.cursor, payer=customer, payee=merchant, amount=amount)
    return {"account_id": customer, "merchant_account": merchant, "amount": str(amount),
            "currency": currency}


def refund_payment(ctx: StepContext) -> dict[str, Any]:
    """Reverse the net this step charged in this execution; nothing charged -> nothing to do.

    Reads the ledger with a locking read: under REPEATABLE READ a plain read could use a
    snapshot older than the action's commit and miss the charge."""
    ctx.cursor.execute(
        "SELECT account_id, counterparty, currency, amount FROM demo_payment_ledger "
        "WHERE execution_id = %s AND step_id = %s ORDER BY id FOR UPDATE",
        (ctx.execution_id, ctx.step_id))
    net: defaultdict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for row in ctx.cursor.fetchall():
        net[(row["account_id"], row["counterparty"], row["currency"])] += row["amount"]
    # Each transfer has a negative side (the payer); reversing that side reverses both.
    owed = [(payer, payee, cur, -total) for (payer, payee, cur), total in sorted(net.items())
            if total < 0]
    for payer, payee, cur, total in owed:
        _post(ctx, payer=payee, payee=payer, amount=total, currency=cur, kind="refund")
    _lock_accounts(ctx.cursor, [a for payer, payee, _, _ in owed for a in (payer, payee)])
    for payer, payee, _, total in owed:
        # No funds check: a refund is owed whatever the merchant holds now.
        _move(ctx.cursor, payer=payee, payee=payer, amount=total)
    refunded = sum((total for *_, total in owed), Decimal("0.00"))
    currencies = sorted({cur for _, _, cur, _ in owed})
    return {"refunded": str(refunded), "currency": currencies[0] if currencies else None}


def _charge_of(ctx: StepContext) -> tuple[str, Decimal, str]:
    return inputs.text(ctx, "customer_id"), inputs.amount(ctx), inputs.currency(ctx)


def _check_can_pay(row: dict[str, Any] | None, account: str, amount: Decimal,
                   currency: str) -> None:
    if row is None:
        raise PermanentError(f"unknown account {account!r}")
    if row["currency"] != currency:
        raise PermanentError(f"account {account} holds {row['currency']}, not {currency}")
    if row["balance"] < amount:
        raise PermanentError(f"insufficient funds in account {account}: "
                             f"balance {row['balance']} < amount {amount}")


def _lock_accounts(cursor: Cursor, account_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Lock the accounts in sorted order (one statement each, so the order is certain)."""
    found = {}
    for account_id in sorted(set(account_ids)):
        cursor.execute("SELECT account_id, balance, currency FROM demo_accounts "
                       "WHERE account_id = %s FOR UPDATE", (account_id,))
        row = cursor.fetchone()
        if row is not None:
            found[account_id] = row
    return found


def _move(cursor: Cursor, *, payer: str, payee: str, amount: Decimal) -> None:
    cursor.execute("UPDATE demo_accounts SET balance = balance - %s WHERE account_id = %s",
                   (amount, payer))
    cursor.execute("UPDATE demo_accounts SET balance = balance + %s WHERE account_id = %s",
                   (amount, payee))


def _post(ctx: StepContext, *, payer: str, payee: str, amount: Decimal, currency: str,
          kind: str) -> None:
    key = (ctx.execution_id, ctx.step_id)
    ctx.cursor.execute(
        "INSERT INTO demo_payment_ledger (execution_id, step_id, account_id, counterparty, "
        "amount, currency, kind) VALUES (%s, %s, %s, %s, %s, %s, %s), "
        "(%s, %s, %s, %s, %s, %s, %s)",
        (*key, payer, payee, -amount, currency, kind, *key, payee, payer, amount, currency, kind))


ACTIONS: dict[str, ActionFn] = {
    "validate_payment": validate_payment,
    "cancel_payment": cancel_payment,
    "process_payment": process_payment,
    "refund_payment": refund_payment,
}
