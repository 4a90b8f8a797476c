"""What the example's three services share: a booking book in memory, kept as a real service
would keep it in its database, so a cancellation can find what it cancels."""

from __future__ import annotations

import itertools
import threading
from typing import Any


class Ledger:
    """Bookings by id; each booking remembers the request that made it."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.bookings: dict[str, dict[str, Any]] = {}
        self.cancelled: list[str] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def book(self, **details: Any) -> str:
        with self._lock:
            booking_id = f"{self.prefix}-{next(self._ids)}"
            self.bookings[booking_id] = details
            return booking_id

    def cancel(self, booking_id: str) -> bool:
        with self._lock:
            if self.bookings.pop(booking_id, None) is None:
                return False
            self.cancelled.append(booking_id)
            return True
