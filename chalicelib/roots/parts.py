"""What the composition roots share: parts built once per container, and the one container a
process keeps (a warm Lambda serves many invocations with it).

Dependency-free, so the step Lambdas' lean root can use it without importing the API's.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

Part = TypeVar("Part")


class HasParts(Protocol):
    _parts: dict[str, Any]
    _lock: threading.RLock


def part(build: Callable[[Any], Part]) -> Any:
    """A property built on first use, once per container: one thread builds it, others wait.
    The container's lock is reentrant, since building one part builds those it needs."""
    name = build.__name__

    @functools.wraps(build)
    def get(self: HasParts) -> Part:
        try:
            return self._parts[name]  # type: ignore[no-any-return]
        except KeyError:
            pass
        with self._lock:
            if name not in self._parts:
                self._parts[name] = build(self)
            return self._parts[name]  # type: ignore[no-any-return]

    return property(get)


class Parts:
    """Base of a container: the storage and lock `part` needs, and close()."""

    def __init__(self) -> None:
        self._parts: dict[str, Any] = {}
        self._lock = threading.RLock()

    def provide(self: Root, **parts: Any) -> Root:
        """Use these instead of building them: a test's fakes, or a team's own adapters."""
        with self._lock:
            self._parts.update(parts)
        return self

    def close(self) -> None:
        """Close the parts that were built and can be closed (pools, clients)."""
        with self._lock:
            built, self._parts = self._parts, {}
        for value in built.values():
            close = getattr(value, "close", None)
            if callable(close):
                close()


Root = TypeVar("Root", bound=Parts)


class ProcessRoot(Generic[Root]):
    """The one container of a process: built by `factory` on first use, then kept."""

    def __init__(self, factory: Callable[[], Root]) -> None:
        self._factory = factory
        self._current: Root | None = None
        self._lock = threading.Lock()

    def get(self) -> Root:
        current = self._current
        if current is not None:
            return current
        with self._lock:
            if self._current is None:
                self._current = self._factory()
            return self._current

    def use(self, replacement: Root | None) -> None:
        """Make `replacement` the process's container (None: build anew on next use). For
        tools and tests that change settings mid-process. The one it replaces is left open:
        what was built from it (a relay, a projector) may still be running on its clients."""
        with self._lock:
            self._current = replacement
