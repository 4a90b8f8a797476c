"""Per-caller request counting in MySQL: fixed windows, one statement per request.

Every API Lambda container counts in the same table, so the limit holds for a caller however
many containers serve them (an in-memory bucket would multiply it by the container count).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from chalicelib.domain.errors import ErrorKind, SagaError


class RateLimited(SagaError):
    kind = ErrorKind.RATE_LIMITED

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, retry_after_seconds=retry_after)
        self.retry_after = retry_after


class MySQLRateLimiter:
    def __init__(self, connector: Any, *, requests: int, window_seconds: int,
                 clock: Callable[[], float] = time.time) -> None:
        self._db = connector
        self._requests = requests
        self._window = window_seconds
        self._clock = clock

    def check(self, caller: str) -> None:
        """Count one request of the caller; RateLimited once the window's allowance is spent."""
        if self._requests <= 0:
            return
        now = self._clock()
        window_start = int(now // self._window) * self._window
        with self._db.transaction() as cur:
            # LAST_INSERT_ID(expr) hands the new count back without a second round trip.
            cur.execute("INSERT INTO api_rate_windows (caller, window_start, requests) "
                        "VALUES (%s, %s, 1) ON DUPLICATE KEY UPDATE "
                        "requests = LAST_INSERT_ID(requests + 1)",
                        (caller[:255], window_start))
            count = cur.lastrowid or 1
            if count == 1:  # a new window: forget windows that ended long ago
                cur.execute("DELETE FROM api_rate_windows WHERE caller = %s "
                            "AND window_start < %s", (caller[:255], window_start))
        if count > self._requests:
            retry_after = max(1, math.ceil(window_start + self._window - now))
            raise RateLimited(f"more than {self._requests} requests in {self._window}s from "
                              f"{caller}; retry after {retry_after}s", retry_after)
