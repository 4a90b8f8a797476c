"""One thread at a time in ast.parse, for the test session (installed on import).

CPython 3.11 keeps ast.parse's recursion depth in interpreter-wide state: two threads parsing
at once (pytest rendering a failure's source while a server thread logs a traceback, which
3.11 underlines with ast.parse) can raise "SystemError: AST constructor recursion depth
mismatch" (python/cpython#106905) inside pytest's reporting, and that ends the whole session
with INTERNALERROR. A lock around ast.parse keeps a failure one test's failure.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

_lock = threading.RLock()
_parse = ast.parse


def serialised_parse(*args: Any, **kwargs: Any) -> Any:
    with _lock:
        return _parse(*args, **kwargs)


ast.parse = serialised_parse
