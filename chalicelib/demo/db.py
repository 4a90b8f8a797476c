"""Small SQL helpers the action families share."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from chalicelib.domain.step_context import PermanentError

if TYPE_CHECKING:
    import pymysql

_DUPLICATE_ENTRY = 1062
_KEY_NAME = re.compile(r"for key '(?:[^'.]+\.)?([^']+)'")


@contextlib.contextmanager
def refuse_duplicates(messages: Mapping[str, str]) -> Iterator[None]:
    """Turn a duplicate-key error on one of the named unique keys into a PermanentError.

    Inserting and catching the error (rather than checking first) takes no gap locks and has no
    check-then-insert race. InnoDB undoes only the failed statement, and the runtime rolls back
    the whole transaction anyway. Duplicates on keys not named stay DB errors (retryable).
    """
    # Imported here, not with the module: the API names the action families (this package)
    # without loading the driver; a step's cursor has loaded it by now.
    from pymysql.err import IntegrityError

    try:
        yield
    except IntegrityError as error:
        key = duplicate_key(error)
        if key is not None and key in messages:
            raise PermanentError(messages[key]) from error
        raise


def duplicate_key(error: pymysql.err.IntegrityError) -> str | None:
    """The unique key a duplicate-entry error names ('PRIMARY' for the primary key)."""
    if not error.args or error.args[0] != _DUPLICATE_ENTRY:
        return None
    match = _KEY_NAME.search(str(error.args[1]) if len(error.args) > 1 else "")
    return match[1] if match else None
