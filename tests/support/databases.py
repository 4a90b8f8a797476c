"""A module's own MySQL database, which the API's runtime uses while it lives."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from chalicelib import runtime
from chalicelib.adapters import mysql
from chalicelib.config import Settings


@contextlib.contextmanager
def own_database(settings: Settings, suffix: str) -> Iterator[str]:
    name = f"{settings.database.mysql.database}_{suffix}"
    mysql.recreate_database(settings.database.mysql, name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SAGA__DATABASE__MYSQL__DATABASE", name)
        runtime.use(None)
        yield name
    runtime.use(None)
    mysql.drop_database(settings.database.mysql, name)
