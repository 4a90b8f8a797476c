"""A module's own MySQL database: one the API's runtime uses while it lives, or one reached
only through a connector of the test's own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.migrate import migrate
from chalicelib.config import Settings
from chalicelib.roots import runtime


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


@contextlib.contextmanager
def migrated_connector(settings: Settings, name: str) -> Iterator[mysql.MySQLConnector]:
    """A fresh database `name` with the schema, a connector to it, both gone afterwards."""
    mysql.recreate_database(settings.database.mysql, name)
    connector = mysql.MySQLConnector(settings.database.mysql, database=name)
    migrate(connector.connection())
    try:
        yield connector
    finally:
        connector.close()
        mysql.drop_database(settings.database.mysql, name)
