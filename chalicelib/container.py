"""The composition root: one object, built explicitly from Settings, that owns the process's
clients, stores and services and hands them to the handlers.

Each part is built on first use and then kept: a warm Lambda container serves many
invocations, so pools and clients outlive a request, and a request that needs only MySQL never
opens MongoDB. Building one is cheap and does no I/O; a test builds its own from the settings
it wants (`Container(settings)`), with no module state to reset.
"""

from __future__ import annotations

import json
from typing import Any

from pymongo import MongoClient

from chalicelib import runtime
from chalicelib.adapters.cursors import CursorSeal, derive_key
from chalicelib.adapters.mongo import mongo_client, read_model
from chalicelib.adapters.mysql import MySQLConnector
from chalicelib.adapters.mysql_migrations import migrate
from chalicelib.adapters.mysql_rate_limit import MySQLRateLimiter
from chalicelib.adapters.stepfunctions.engine import StepFunctionsEngine
from chalicelib.auth import TokenVerifier
from chalicelib.config import Settings, config_dir
from chalicelib.events.projector import Projector
from chalicelib.parts import Parts, part
from chalicelib.push.pusher import Pusher
from chalicelib.push.queued import QueuedPusher
from chalicelib.push.subscriptions import Subscriptions
from chalicelib.saga.execution_service import ExecutionService
from chalicelib.saga.service import DefinitionService
from chalicelib.steps.contract import CONTRACT_SCHEMA_FILE


class Container(Parts):
    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    # -- clients ----------------------------------------------------------------------------------

    @part
    def connector(self) -> MySQLConnector:
        """The process's MySQL pool; the schema is brought up to date once, when it is made
        (deploys and `saga db migrate` do it first; this covers a process that starts before)."""
        connector = MySQLConnector(self.settings.database.mysql)
        migrate(connector.connection())
        return connector

    def ensure_schema(self) -> None:
        """Make the MySQL pool now, which brings the schema up to date, not on first use."""
        _ = self.connector

    @part
    def mongo(self) -> MongoClient:
        return mongo_client(self.settings.database.mongodb)

    @part
    def engine(self) -> StepFunctionsEngine:
        return runtime.build_engine(self.settings)

    @part
    def token_verifier(self) -> TokenVerifier:
        return TokenVerifier(self.settings.auth, config_dir())

    # -- services -------------------------------------------------------------------------------

    @part
    def definition_service(self) -> DefinitionService:
        return runtime.build_definition_service(self.settings, self.connector,
                                                engine=self.engine)

    @part
    def execution_service(self) -> ExecutionService:
        return runtime.build_execution_service(self.settings, self.connector, self.mongo,
                                               engine=self.engine)

    @part
    def cursor_seal(self) -> CursorSeal:
        """Seals the listings' cursors: with limits.cursor_secret, else with a key derived
        from the deployment's own secrets, which every container of it shares."""
        settings = self.settings
        if settings.limits.cursor_secret:
            return CursorSeal(settings.limits.cursor_secret.encode())
        mysql = settings.database.mysql
        return CursorSeal(derive_key([
            settings.stage, settings.aws.app_name, mysql.host, str(mysql.port), mysql.username,
            mysql.password, mysql.database, settings.database.mongodb.uri,
            settings.auth.hs256_secret]))

    @part
    def rate_limiter(self) -> MySQLRateLimiter:
        limits = self.settings.limits
        return MySQLRateLimiter(self.connector, requests=limits.rate_limit_requests,
                                window_seconds=limits.rate_limit_window_seconds)

    # -- pushes and the read model -----------------------------------------------------------------

    @part
    def subscriptions(self) -> Subscriptions:
        return Subscriptions(read_model(self.mongo, self.settings.database.mongodb))

    @part
    def pusher(self) -> Pusher:
        return Pusher(runtime.management_client(self.settings), self.subscriptions)

    @part
    def queued_pusher(self) -> QueuedPusher:
        """What the projector pushes through: it enqueues, per-connection senders deliver."""
        return QueuedPusher(self.pusher)

    @part
    def pushing_projector(self) -> Projector:
        """The projector Lambda's, built (indexes ensured) once per container, not per batch."""
        return runtime.build_projector(self.settings, self.mongo,
                                       on_applied=self.queued_pusher.push_event)

    @part
    def openapi_document(self) -> dict[str, Any]:
        """The committed document (what clients were promised), read once."""
        return json.loads(runtime.OPENAPI_FILE.read_text())  # type: ignore[no-any-return]

    @part
    def participant_contract(self) -> dict[str, Any]:
        """The committed JSON Schema of a participant request, read once."""
        return json.loads(CONTRACT_SCHEMA_FILE.read_text())  # type: ignore[no-any-return]
