"""Seed and inspect the demo tables (tests, benchmarks, demos).

snapshot() is what "compensated means back to where it was" is checked against: it leaves out
what is append-only by design (ledger rows, notifications) and keeps their invariants instead
(net ledger per account, sent notifications without a retraction).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chalicelib.domain.step_context import Cursor

# No foreign keys between them, so any order works for clearing.
DEMO_TABLES = ("demo_accounts", "demo_payment_ledger", "demo_stock", "demo_reservations",
               "demo_orders", "demo_shipments", "demo_users", "demo_notifications")

_OUTSTANDING = """
    SELECT s.execution_id, s.step_id, s.recipient, s.channel FROM demo_notifications s
    WHERE s.kind = 'sent' AND NOT EXISTS (
        SELECT 1 FROM demo_notifications r WHERE r.execution_id = s.execution_id
        AND r.step_id = s.step_id AND r.kind = 'retraction')"""


def seed_account(cursor: Cursor, account_id: str, balance: Decimal | str,
                 currency: str = "EUR") -> None:
    """Create the account, or set its balance and currency if it exists."""
    cursor.execute("INSERT INTO demo_accounts (account_id, balance, currency) "
                   "VALUES (%s, %s, %s) ON DUPLICATE KEY UPDATE balance = VALUES(balance), "
                   "currency = VALUES(currency)", (account_id, Decimal(balance), currency))


def seed_stock(cursor: Cursor, sku: str, available: int) -> None:
    """Create the sku, or set what is available (reservations keep their `reserved`)."""
    cursor.execute("INSERT INTO demo_stock (sku, available) VALUES (%s, %s) "
                   "ON DUPLICATE KEY UPDATE available = VALUES(available)", (sku, available))


def clear(cursor: Cursor) -> None:
    """Empty every demo table. DELETE, not TRUNCATE, so it stays inside the transaction."""
    for table in DEMO_TABLES:
        cursor.execute(f"DELETE FROM {table}")


def snapshot(cursor: Cursor) -> dict[str, Any]:
    """A JSON-able, comparable picture of the demo state (amounts as strings)."""
    return {
        "accounts": {r["account_id"]: {"balance": str(r["balance"]), "currency": r["currency"]}
                     for r in _all(cursor, "SELECT account_id, balance, currency "
                                           "FROM demo_accounts ORDER BY account_id")},
        "money": {r["currency"]: str(r["total"])
                  for r in _all(cursor, "SELECT currency, SUM(balance) AS total "
                                        "FROM demo_accounts GROUP BY currency ORDER BY currency")},
        "ledger_net": {r["account_id"]: str(r["net"])
                       for r in _all(cursor, "SELECT account_id, SUM(amount) AS net "
                                             "FROM demo_payment_ledger GROUP BY account_id "
                                             "HAVING net <> 0 ORDER BY account_id")},
        "stock": {r["sku"]: {"available": r["available"], "reserved": r["reserved"]}
                  for r in _all(cursor, "SELECT sku, available, reserved FROM demo_stock "
                                        "ORDER BY sku")},
        "reservations": _all(cursor, "SELECT execution_id, step_id, sku, quantity "
                                     "FROM demo_reservations ORDER BY execution_id, step_id, sku"),
        "orders": _all(cursor, "SELECT order_id, execution_id, step_id, customer_id, "
                               "CAST(amount AS CHAR) AS amount, currency FROM demo_orders "
                               "ORDER BY order_id"),
        "shipments": _all(cursor, "SELECT shipment_id, execution_id, step_id, order_id, address, "
                                  "carrier FROM demo_shipments ORDER BY shipment_id"),
        "users": _all(cursor, "SELECT user_id, execution_id, step_id, email, name "
                              "FROM demo_users ORDER BY user_id"),
        "unretracted_notifications": _all(cursor, _OUTSTANDING + " ORDER BY s.id"),
    }


def row_counts(cursor: Cursor) -> dict[str, int]:
    """Rows per demo table, append-only ones included: proves a rolled-back step left none."""
    return {table: _all(cursor, f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]
            for table in DEMO_TABLES}


def left_behind(cursor: Cursor, execution_id: str) -> dict[str, Any]:
    """What one execution still has in the demo tables: all empty once it is compensated."""
    one = (execution_id,)
    return {
        "ledger_net": {r["account_id"]: str(r["net"]) for r in _all(
            cursor, "SELECT account_id, SUM(amount) AS net FROM demo_payment_ledger "
                    "WHERE execution_id = %s GROUP BY account_id HAVING net <> 0 "
                    "ORDER BY account_id", one)},
        "reservations": _all(cursor, "SELECT step_id, sku, quantity FROM demo_reservations "
                                     "WHERE execution_id = %s ORDER BY step_id, sku", one),
        "orders": _all(cursor, "SELECT order_id FROM demo_orders WHERE execution_id = %s", one),
        "shipments": _all(cursor, "SELECT shipment_id FROM demo_shipments "
                                  "WHERE execution_id = %s", one),
        "users": _all(cursor, "SELECT user_id FROM demo_users WHERE execution_id = %s", one),
        "unretracted_notifications": _all(cursor, _OUTSTANDING + " AND s.execution_id = %s "
                                                  "ORDER BY s.id", one),
    }


def _all(cursor: Cursor, query: str, args: tuple[Any, ...] | None = None) -> list[dict[str, Any]]:
    cursor.execute(query, args)
    return list(cursor.fetchall())
