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


def exit_codes_help() -> str:
    """The table, as `saga --help` and each command's help end with it."""
    said = {Exit.OK: "done (run, follow: the saga COMPLETED)",
            Exit.FAILED: "failed (run, follow: the saga did not complete)",
            Exit.REFUSED: "misused, or the service refused the request (4xx)",
            Exit.UNAVAILABLE: "a server or the service is down or failed (5xx)",
            Exit.TIMED_OUT: "--follow gave up waiting",
            Exit.INTERRUPTED: "interrupted (Ctrl-C)"}
    return "exit codes:\n" + "\n".join(f"  {int(code):<4} {text}" for code, text in said.items())
