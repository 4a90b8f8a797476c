"""The exit codes of `saga`, one table for every command (stack, deploy, the service's).

Scripts branch on these, so a number keeps its meaning across commands.
"""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0  # done (for `run`: the saga COMPLETED)
    FAILED = 1  # the command failed (for `run`: the saga did not complete)
    REFUSED = 2  # misused, or the service refused the request (4xx)
    UNAVAILABLE = 3  # a server or the service is down, unhealthy or failed (5xx)
    TIMED_OUT = 4  # `--follow` gave up waiting
    INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it
