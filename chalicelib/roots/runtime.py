"""The process's one Container (chalicelib.roots.container), which the handlers get from
`container()`.

Lambda containers are reused across invocations, so the process keeps its Container, and with
it its pools, clients and services, for its whole life.
"""

from __future__ import annotations

from chalicelib.config import get_settings, load_settings
from chalicelib.roots.container import Container
from chalicelib.roots.parts import ProcessRoot

# The process's Container: built from the settings on first use, then kept.
PROCESS: ProcessRoot[Container] = ProcessRoot(lambda: Container(load_settings()))


def container() -> Container:
    """The process's Container."""
    return PROCESS.get()


def use(replacement: Container | None) -> None:
    """Make `replacement` the process's Container (None: build anew from the settings, read
    again, on next use). For tools and tests that change settings mid-process; the replaced
    one stays open for whatever was built from it."""
    get_settings.cache_clear()
    PROCESS.use(replacement)
