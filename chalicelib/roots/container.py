"""The API's composition root: one object, built explicitly from Settings, that owns the
process's clients, stores and services and hands them to the handlers.

Each part is built on first use and then kept: a warm Lambda container serves many
invocations, so pools, clients and services outlive a request, and a request that needs only
MySQL never opens MongoDB. Building one is cheap and does no I/O; a test builds its own from
the settings it wants (`Container(settings)`), with no module state to reset. The schema is
migrated at deploy, by `saga db migrate`, and once per process when the MySQL pool is made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from chalicelib.config import Settings, config_dir
from chalicelib.roots.parts import Parts, part

# Each part imports its adapters and use cases when it is first built, not here: the API
# imports this module for every request, and a request pays only for the parts it uses (a
# saga listing loads pymysql, never kafka-python or pymongo).
if TYPE_CHECKING:
    from kafka import KafkaConsumer
    from pymongo import MongoClient

    from chalicelib.adapters.cursors import CursorSeal
    from chalicelib.adapters.mongo.projector import Projector
    from chalicelib.adapters.mysql.connector import MySQLConnector
    from chalicelib.adapters.mysql.dead_letters import MySQLDeadLetters
    from chalicelib.adapters.mysql.rate_limit import MySQLRateLimiter
    from chalicelib.adapters.mysql.relay import OutboxRelay
    from chalicelib.adapters.push.pusher import Pusher
    from chalicelib.adapters.push.queued import QueuedPusher
    from chalicelib.adapters.push.subscriptions import Subscriptions
    from chalicelib.adapters.stepfunctions.arns import FunctionNames
    from chalicelib.adapters.stepfunctions.engine import StepFunctionsEngine
    from chalicelib.domain.lifecycle import Phase
    from chalicelib.domain.models import Step
    from chalicelib.domain.validation import ValidationPolicy
    from chalicelib.http.tokens import TokenVerifier
    from chalicelib.usecases.cleanup import Cleanup
    from chalicelib.usecases.definitions import DefinitionService
    from chalicelib.usecases.executions import ExecutionService
    from chalicelib.usecases.open_callbacks import CallbackListing
    from chalicelib.usecases.reconciler import Reconciler
    from chalicelib.usecases.steps.callbacks import CallbackService


class Container(Parts):
    """The API's parts, each built once on first use. The `new_*` methods build one more of a
    part, of its own, from the same clients, for a caller that needs other options (a
    reconciler with no grace period) or state of its own (a worker's relay)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    # -- clients ----------------------------------------------------------------------------------

    @part
    def connector(self) -> MySQLConnector:
        """The process's MySQL pool; the schema is brought up to date once, when it is made
        (deploys and `saga db migrate` do it first; this covers a process that starts before)."""
        from chalicelib.adapters.mysql.connector import MySQLConnector
        from chalicelib.adapters.mysql.migrate import migrate

        connector = MySQLConnector(self.settings.database.mysql)
        migrate(connector.connection())
        return connector

    def ensure_schema(self) -> None:
        """Make the MySQL pool now, which brings the schema up to date, not on first use."""
        _ = self.connector

    @part
    def mongo(self) -> MongoClient:
        from chalicelib.adapters.mongo.client import mongo_client

        return mongo_client(self.settings.database.mongodb)

    @part
    def function_names(self) -> FunctionNames:
        """The deployment's Lambda names and ARNs (the account asked of STS once, if unset)."""
        from chalicelib.adapters import aws
        from chalicelib.adapters.stepfunctions.arns import FunctionNames

        aws_settings = self.settings.aws
        account = aws_settings.account_id or str(
            aws.client("sts", aws_settings).get_caller_identity()["Account"])
        return FunctionNames(app=aws_settings.app_name, stage=self.settings.stage,
                             region=aws_settings.region, account=account)

    @part
    def engine(self) -> StepFunctionsEngine:
        from chalicelib.adapters import aws
        from chalicelib.adapters.stepfunctions.compiler import CompileOptions
        from chalicelib.adapters.stepfunctions.engine import StepFunctionsEngine
        from chalicelib.demo import FAMILY_OF
        from chalicelib.roots.step_names import RECORDER_FUNCTION, family_of, function_name

        settings, names = self.settings, self.function_names

        def function_for(step: Step, phase: Phase) -> str:
            return names.arn(function_name(family_of(step.target(phase), FAMILY_OF)))

        # Unset means the role the stack template creates for the stage.
        role = (settings.aws.state_machine_role_arn or f"arn:aws:iam::{names.account}:role/"
                f"{settings.aws.app_name}-{settings.stage}-states")
        return StepFunctionsEngine(
            aws.client("stepfunctions", settings.aws), stage=settings.stage, role_arn=role,
            region=settings.aws.region, account=names.account, function_for=function_for,
            recorder_arn=names.arn(RECORDER_FUNCTION),
            options=CompileOptions(retry_enabled=settings.saga.retry_enabled,
                                   compensation_enabled=settings.saga.compensation_enabled,
                                   retriable_max_attempts=settings.saga.retriable_max_attempts,
                                   task_timeout_margin_s=settings.saga.task_timeout_margin_s,
                                   max_fanout_concurrency=settings.saga.max_fanout_concurrency))

    @part
    def token_verifier(self) -> TokenVerifier:
        from chalicelib.http.tokens import TokenVerifier

        return TokenVerifier(self.settings.auth, config_dir())

    # -- services -------------------------------------------------------------------------------

    @part
    def validation_policy(self) -> ValidationPolicy:
        from chalicelib.demo import BUILTIN_ACTIONS
        from chalicelib.domain.validation import ValidationPolicy

        return ValidationPolicy.from_settings(self.settings.saga,
                                              actions=frozenset(BUILTIN_ACTIONS))

    @part
    def definition_service(self) -> DefinitionService:
        from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
        from chalicelib.adapters.mysql.executions import MySQLExecutionStore
        from chalicelib.usecases.definitions import DefinitionService, Limits

        saga = self.settings.saga
        return DefinitionService(
            MySQLDefinitionStore(self.connector, auditing=saga.auditing_enabled),
            self.validation_policy, Limits(saga.max_sagas, saga.max_steps),
            executions=MySQLExecutionStore(self.connector), engine=self.engine)

    @part
    def execution_service(self) -> ExecutionService:
        from chalicelib.adapters.mongo.client import read_model
        from chalicelib.adapters.mongo.read_model import MongoExecutionReadModel
        from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
        from chalicelib.adapters.mysql.executions import MySQLExecutionStore
        from chalicelib.roots.step_wiring import faults_enabled
        from chalicelib.usecases.executions import ExecutionPolicy, ExecutionService

        settings = self.settings
        return ExecutionService(
            MySQLDefinitionStore(self.connector, auditing=settings.saga.auditing_enabled),
            MySQLExecutionStore(self.connector), self.engine,
            ExecutionPolicy(faults_enabled=faults_enabled(settings),
                            max_input_bytes=settings.limits.max_input_bytes,
                            max_event_bytes=settings.kafka.max_request_size,
                            max_fanout_items=settings.saga.max_fanout_items),
            MongoExecutionReadModel(read_model(self.mongo, settings.database.mongodb)))

    @part
    def callback_service(self) -> CallbackService:
        from datetime import UTC, datetime

        from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
        from chalicelib.adapters.mysql.step_ledger import MySQLStepLedger
        from chalicelib.usecases.steps.callbacks import CallbackService
        from chalicelib.usecases.steps.recording import OutcomeWriter
        from chalicelib.usecases.steps.revisions import StepDefinitions

        saga = self.settings.saga
        ledger = MySQLStepLedger(self.connector)
        steps = StepDefinitions(MySQLDefinitionStore(self.connector),
                                cache=saga.caching_enabled)
        outcomes = OutcomeWriter(ledger, steps, lambda: datetime.now(UTC),
                                 max_result_bytes=saga.max_result_bytes,
                                 retriable_max_attempts=saga.retriable_max_attempts)
        return CallbackService(ledger, self.engine, outcomes, steps,
                               task_timeout_margin_s=saga.task_timeout_margin_s)

    @part
    def callback_listing(self) -> CallbackListing:
        """The open callbacks (approvals among them), from the read model."""
        from chalicelib.adapters.mongo.client import read_model
        from chalicelib.adapters.mongo.open_callbacks import MongoOpenCallbacks
        from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
        from chalicelib.usecases.open_callbacks import CallbackListing

        return CallbackListing(
            MongoOpenCallbacks(read_model(self.mongo, self.settings.database.mongodb)),
            MySQLDefinitionStore(self.connector))

    @part
    def reconciler(self) -> Reconciler:
        """Kept, so a scheduled run goes on after the executions the last one looked at."""
        return self.new_reconciler()

    def new_reconciler(self, *, grace_seconds: float | None = None) -> Reconciler:
        """A reconciler of its own on this container's parts: one that repairs executions
        after `grace_seconds` of quiet instead of config saga.reconcile_after (None), as
        `saga reconcile --older-than` and tests that cannot wait ask for."""
        from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
        from chalicelib.adapters.mysql.executions import MySQLExecutionStore
        from chalicelib.durations import parse_duration_ms
        from chalicelib.usecases.reconciler import Reconciler

        saga = self.settings.saga
        if grace_seconds is None:
            grace_seconds = parse_duration_ms(saga.reconcile_after) / 1000
        return Reconciler(MySQLExecutionStore(self.connector), self.engine,
                          grace_seconds=grace_seconds,
                          describe_budget=saga.reconcile_describe_budget,
                          definitions=MySQLDefinitionStore(self.connector))

    @part
    def cleanup(self) -> Cleanup:
        from datetime import timedelta

        from chalicelib.adapters.mysql.cleanup import MySQLCleanup
        from chalicelib.usecases.cleanup import Cleanup

        return Cleanup(MySQLCleanup(self.connector, event_retention=timedelta(days=7)),
                       self.engine)

    @part
    def cursor_seal(self) -> CursorSeal:
        """Seals the listings' cursors: with limits.cursor_secret, else with a key derived
        from the deployment's own secrets, which every container of it shares."""
        from chalicelib.adapters.cursors import CursorSeal, derive_key

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
        from chalicelib.adapters.mysql.rate_limit import MySQLRateLimiter

        limits = self.settings.limits
        return MySQLRateLimiter(self.connector, requests=limits.rate_limit_requests,
                                window_seconds=limits.rate_limit_window_seconds)

    # -- events: outbox -> Kafka -> read model ----------------------------------------------------

    @part
    def relay(self) -> OutboxRelay:
        """Kept, with its Kafka producer: a warm Lambda publishes on the same connection."""
        return self.new_relay()

    def new_relay(self) -> OutboxRelay:
        """A relay of its own (its producer, its counts) on this container's MySQL pool: for a
        worker thread that relays next to the process's other work."""
        from chalicelib.adapters.kafka.publisher import KafkaPublisher
        from chalicelib.adapters.mysql.relay import OutboxRelay

        kafka = self.settings.kafka
        return OutboxRelay(self.connector, KafkaPublisher(kafka), kafka.topic)

    @part
    def dead_letters(self) -> MySQLDeadLetters:
        from chalicelib.adapters.mysql.dead_letters import MySQLDeadLetters

        return MySQLDeadLetters(self.connector)

    @part
    def projector(self) -> Projector:
        """Applies events to the read model, pushing nothing (replays, `saga events`)."""
        return self.new_projector()

    @part
    def pushing_projector(self) -> Projector:
        """The projector Lambda's (and `saga serve`'s): each applied event is pushed to its
        WebSocket subscribers."""
        return self.new_projector(on_applied=self.queued_pusher.push_event)

    def new_projector(self, on_applied: Callable[[Mapping[str, Any]], None] | None = None
                      ) -> Projector:
        """A projector of its own on this container's MongoDB client, its indexes ensured now:
        after the read model was dropped, or to watch what it applies (`on_applied`)."""
        from chalicelib.adapters.mongo.client import read_model
        from chalicelib.adapters.mongo.projector import Projector, ensure_indexes

        database = read_model(self.mongo, self.settings.database.mongodb)
        ensure_indexes(database, self.settings.read_model.history_retention_s)
        return Projector(self.mongo, database, on_applied)

    @part
    def projector_consumer(self) -> Callable[[], KafkaConsumer]:
        """Makes the projector's Kafka consumer (a new one each time it (re)connects)."""
        from chalicelib.adapters.kafka.publisher import partition_reader

        kafka = self.settings.kafka
        return lambda: partition_reader(kafka, kafka.topic,
                                        group_id=f"{kafka.group_id}-projector")

    # -- pushes -----------------------------------------------------------------------------------

    @part
    def subscriptions(self) -> Subscriptions:
        from chalicelib.adapters.mongo.client import read_model
        from chalicelib.adapters.push.subscriptions import Subscriptions

        return Subscriptions(read_model(self.mongo, self.settings.database.mongodb))

    @part
    def management_api(self) -> Any:
        """The API Gateway management API at the configured endpoint (the local gateway
        here)."""
        import boto3
        from botocore.config import Config as BotoConfig

        endpoint = self.settings.websocket.management_endpoint
        local = endpoint.startswith("http://")
        # A client that can't take a message within seconds is dropped, not waited on (or
        # retried).
        bounded = BotoConfig(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1})
        return boto3.session.Session(region_name=self.settings.aws.region).client(
            "apigatewaymanagementapi", endpoint_url=endpoint, config=bounded,
            aws_access_key_id="test" if local else None,
            aws_secret_access_key="test" if local else None)

    @part
    def pusher(self) -> Pusher:
        from chalicelib.adapters.push.pusher import Pusher

        return Pusher(self.management_api, self.subscriptions)

    @part
    def queued_pusher(self) -> QueuedPusher:
        """What the projector pushes through: it enqueues, per-connection senders deliver."""
        from chalicelib.adapters.push.queued import QueuedPusher

        return QueuedPusher(self.pusher)

    # -- documents --------------------------------------------------------------------------------

    @part
    def openapi_document(self) -> dict[str, Any]:
        """The committed document (what clients were promised), made once, as this stage
        serves it: its schemas for the stage's validation rules and limits, and without auth
        no token needed."""
        from chalicelib.http.openapi import OPENAPI_FILE, stage_document

        return stage_document(json.loads(OPENAPI_FILE.read_text()),
                              auth_enabled=self.settings.auth.enabled,
                              stage=self.settings.stage, saga=self.settings.saga)

    @part
    def participant_contract(self) -> dict[str, Any]:
        """The committed JSON Schema of a participant request, read once."""
        from chalicelib.domain.contract import CONTRACT_SCHEMA_FILE

        return json.loads(CONTRACT_SCHEMA_FILE.read_text())  # type: ignore[no-any-return]
