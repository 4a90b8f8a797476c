"""What a process's own MySQL connections made the server do, from MariaDB's session counters
(no settings, no servers: safe to import anywhere).

The server's global counters would count every other client of a shared server as well; the
session counters of the connections this process opened count only its own work.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

# Statements (COMMIT included), commits, rollbacks and the writes among the statements.
COUNTERS = ("Questions", "Com_commit", "Com_rollback", "Com_insert", "Com_update",
            "Com_delete")


class Sessions:
    """Connections kept as they are opened, their counters summed on demand. Read them while
    no transaction is open on them (between requests, between steps)."""

    def __init__(self) -> None:
        self.opened: list[Any] = []
        self._shows: dict[int, int] = {}  # our own SHOWs, run on each connection

    def recording(self, connect: Callable[..., Any]) -> Callable[..., Any]:
        """`connect`, keeping each connection it opens."""
        def opened(*args: Any, **kwargs: Any) -> Any:
            conn = connect(*args, **kwargs)
            self.opened.append(conn)
            return conn

        return opened

    def totals(self, names: Sequence[str] = COUNTERS) -> dict[str, int]:
        """The counters summed over the open connections, Questions without the SHOWs that
        read them. A connection closed meanwhile drops out: compare totals of one run."""
        totals = dict.fromkeys(names, 0)
        marks = ", ".join(["%s"] * len(names))
        for conn in self.opened:
            if not conn.open:
                continue
            with conn.cursor() as cur:
                cur.execute(f"SHOW SESSION STATUS WHERE Variable_name IN ({marks})",
                            tuple(names))
                for row in cur.fetchall():
                    totals[row["Variable_name"]] += int(row["Value"])
            self._shows[id(conn)] = self._shows.get(id(conn), 0) + 1
            if "Questions" in totals:
                totals["Questions"] -= self._shows[id(conn)]
        return totals
