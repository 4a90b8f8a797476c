"""The composition root: real adapters wired to the service, built once per process.

Lambda containers are reused across invocations, so connections and the applied-migrations check
live here for the life of the process.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from chalicelib.adapters.mysql import MySQLConnector
from chalicelib.adapters.mysql_definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql_migrations import migrate
from chalicelib.config import Settings, get_settings
from chalicelib.saga.service import DefinitionService, Limits
from chalicelib.saga.validation import ValidationPolicy


def build_definition_service(settings: Settings, connector: MySQLConnector) -> DefinitionService:
    migrate(connector.connection())
    store = MySQLDefinitionStore(connector, auditing=settings.saga.auditing_enabled)
    return DefinitionService(store, ValidationPolicy.from_settings(settings.saga),
                             Limits(settings.saga.max_sagas, settings.saga.max_steps))


@functools.cache
def definition_service() -> DefinitionService:
    settings = get_settings()
    return build_definition_service(settings, MySQLConnector(settings.database.mysql))


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The committed document (what clients were promised), read once."""
    return json.loads(OPENAPI_FILE.read_text())


OPENAPI_FILE = Path(__file__).with_name("openapi.json")
