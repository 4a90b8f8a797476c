"""The composition root: real adapters wired to the services, built once per process.

Lambda containers are reused across invocations, so connections, clients and the
applied-migrations check live here for the life of the process.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from kafka import KafkaConsumer
from pymongo import MongoClient

from chalicelib.adapters import aws
from chalicelib.adapters.kafka import KafkaPublisher
from chalicelib.adapters.kafka import consumer as kafka_consumer
from chalicelib.adapters.mongo import mongo_client, read_model
from chalicelib.adapters.mongo_read_model import MongoExecutionReadModel
from chalicelib.adapters.mysql import MySQLConnector
from chalicelib.adapters.mysql_cleanup import MySQLCleanup
from chalicelib.adapters.mysql_dead_letters import MySQLDeadLetters
from chalicelib.adapters.mysql_definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql_executions import MySQLExecutionStore
from chalicelib.adapters.mysql_migrations import migrate
from chalicelib.adapters.mysql_rate_limit import MySQLRateLimiter
from chalicelib.adapters.stepfunctions import FunctionNames, StepFunctionsOrchestrator
from chalicelib.auth import TokenVerifier, verifier
from chalicelib.config import Settings, config_dir, get_settings
from chalicelib.events.projector import Projector, ensure_indexes
from chalicelib.events.relay import OutboxRelay
from chalicelib.ports import Actor
from chalicelib.push.pusher import Pusher
from chalicelib.push.queued import QueuedPusher
from chalicelib.push.subscriptions import Subscriptions
from chalicelib.saga.compiler import CompileOptions
from chalicelib.saga.durations import parse_duration_ms
from chalicelib.saga.execution_service import ExecutionPolicy, ExecutionService
from chalicelib.saga.lifecycle import Phase
from chalicelib.saga.models import Step
from chalicelib.saga.reconciler import Reconciler
from chalicelib.saga.service import DefinitionService, Limits
from chalicelib.saga.validation import ValidationPolicy
from chalicelib.steps import wiring
from chalicelib.steps.actions import BUILTIN_ACTIONS, FAMILY_OF
from chalicelib.steps.registry import family_of, function_name
from chalicelib.steps.wiring import (  # one connection per process, shared with the steps'
    connector,
    faults_enabled,
)

OPENAPI_FILE = Path(__file__).with_name("openapi.json")
RECORDER_FUNCTION = "saga_recorder"


def account_id(settings: Settings) -> str:
    if settings.aws.account_id:
        return settings.aws.account_id
    return str(aws.client("sts", settings.aws).get_caller_identity()["Account"])


def function_names(settings: Settings) -> FunctionNames:
    return FunctionNames(app=settings.aws.app_name, stage=settings.stage,
                         region=settings.aws.region, account=account_id(settings))


def state_machine_role(settings: Settings, account: str) -> str:
    # Unset means the role the stack template creates for the stage.
    return (settings.aws.state_machine_role_arn
            or f"arn:aws:iam::{account}:role/{settings.aws.app_name}-{settings.stage}-states")


def build_orchestrator(settings: Settings) -> StepFunctionsOrchestrator:
    names = function_names(settings)

    def function_for(step: Step, phase: Phase) -> str:
        return names.arn(function_name(family_of(step.target(phase), FAMILY_OF)))

    return StepFunctionsOrchestrator(
        aws.client("stepfunctions", settings.aws), stage=settings.stage,
        role_arn=state_machine_role(settings, names.account),
        region=settings.aws.region, account=names.account, function_for=function_for,
        recorder_arn=names.arn(RECORDER_FUNCTION),
        options=CompileOptions(retry_enabled=settings.saga.retry_enabled,
                               compensation_enabled=settings.saga.compensation_enabled))


def validation_policy(settings: Settings) -> ValidationPolicy:
    return ValidationPolicy.from_settings(settings.saga, actions=frozenset(BUILTIN_ACTIONS))


def build_definition_service(settings: Settings, connector: MySQLConnector) -> DefinitionService:
    migrate(connector.connection())
    store = MySQLDefinitionStore(connector, auditing=settings.saga.auditing_enabled)
    return DefinitionService(store, validation_policy(settings),
                             Limits(settings.saga.max_sagas, settings.saga.max_steps),
                             executions=MySQLExecutionStore(connector),
                             orchestrator=build_orchestrator(settings))


def build_execution_service(settings: Settings, connector: MySQLConnector) -> ExecutionService:
    migrate(connector.connection())
    return ExecutionService(
        MySQLDefinitionStore(connector, auditing=settings.saga.auditing_enabled),
        MySQLExecutionStore(connector), build_orchestrator(settings),
        ExecutionPolicy(faults_enabled=faults_enabled(settings),
                        max_input_bytes=settings.limits.max_input_bytes,
                        max_event_bytes=settings.kafka.max_request_size),
        MongoExecutionReadModel(read_model(mongo(), settings.database.mongodb)))


def build_reconciler(settings: Settings, connector: MySQLConnector,
                     grace_seconds: float | None = None) -> Reconciler:
    migrate(connector.connection())
    grace = parse_duration_ms(settings.saga.reconcile_after) / 1000
    return Reconciler(MySQLExecutionStore(connector), build_orchestrator(settings),
                      grace_seconds=grace if grace_seconds is None else grace_seconds,
                      describe_budget=settings.saga.reconcile_describe_budget)


def cleanup_interval_seconds(settings: Settings) -> float:
    """How often cleanup runs on its own (config saga.cleanup_interval)."""
    seconds = parse_duration_ms(settings.saga.cleanup_interval) / 1000
    if seconds <= 0:
        raise ValueError("config key saga.cleanup_interval must be longer than 0s")
    return seconds


def cleanup_schedule_minutes(settings: Settings) -> int:
    """The interval as an EventBridge rate, whose finest unit is a minute (rounded up)."""
    return max(1, int(-(-cleanup_interval_seconds(settings) // 60)))


def cleanup(settings: Settings, connector: MySQLConnector, actor: Actor) -> dict[str, Any]:
    """Remove what nothing needs any more; the machines of removed versions go too."""
    migrate(connector.connection())
    report = MySQLCleanup(connector, event_retention=timedelta(days=7)).run(actor)
    orchestrator = build_orchestrator(settings)
    by_saga: dict[str, list[int]] = {}
    for saga_id, revision in report.orphan_versions:
        by_saga.setdefault(saga_id, []).append(revision)
    for saga_id, revisions in by_saga.items():
        orchestrator.delete_machines(saga_id, revisions)
    return {"removed": {"idempotency_records": report.idempotency_records,
                        "published_events": report.published_events,
                        "orphan_versions": [{"saga_id": s, "revision": r}
                                            for s, r in report.orphan_versions]}}


def build_relay(settings: Settings, connector: MySQLConnector) -> OutboxRelay:
    migrate(connector.connection())
    return OutboxRelay(connector, KafkaPublisher(settings.kafka), settings.kafka.topic)


@functools.cache
def mongo() -> MongoClient:
    return mongo_client(get_settings().database.mongodb)


def build_projector(settings: Settings, client: MongoClient,
                    on_applied: Callable[[Mapping[str, Any]], None] | None = None) -> Projector:
    database = read_model(client, settings.database.mongodb)
    ensure_indexes(database)
    return Projector(client, database, on_applied)


def build_dead_letters(connector: MySQLConnector) -> MySQLDeadLetters:
    migrate(connector.connection())
    return MySQLDeadLetters(connector)


def projector_consumer(settings: Settings) -> Callable[[], KafkaConsumer]:
    return lambda: kafka_consumer(settings.kafka, [settings.kafka.topic],
                                  group_id=f"{settings.kafka.group_id}-projector")


def management_client(settings: Settings) -> Any:
    """The API Gateway management API at the configured endpoint (the local gateway here)."""
    endpoint = settings.websocket.management_endpoint
    local = endpoint.startswith("http://")
    # A client that can't take a message within seconds is dropped, not waited on (or retried).
    bounded = BotoConfig(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1})
    return boto3.session.Session(region_name=settings.aws.region).client(
        "apigatewaymanagementapi", endpoint_url=endpoint, config=bounded,
        aws_access_key_id="test" if local else None,
        aws_secret_access_key="test" if local else None)


@functools.cache
def subscriptions() -> Subscriptions:
    settings = get_settings()
    return Subscriptions(read_model(mongo(), settings.database.mongodb))


@functools.cache
def pusher() -> Pusher:
    return Pusher(management_client(get_settings()), subscriptions())


@functools.cache
def queued_pusher() -> QueuedPusher:
    """What the projector pushes through: it enqueues, per-connection senders deliver."""
    return QueuedPusher(pusher())


@functools.cache
def pushing_projector() -> Projector:
    """The projector Lambda's, built (indexes ensured) once per container, not per batch."""
    return build_projector(get_settings(), mongo(), on_applied=queued_pusher().push_event)


@functools.cache
def definition_service() -> DefinitionService:
    return build_definition_service(get_settings(), connector())


@functools.cache
def execution_service() -> ExecutionService:
    return build_execution_service(get_settings(), connector())


@functools.cache
def rate_limiter() -> MySQLRateLimiter:
    limits = get_settings().limits
    connection = connector()
    migrate(connection.connection())
    return MySQLRateLimiter(connection, requests=limits.rate_limit_requests,
                            window_seconds=limits.rate_limit_window_seconds)


def token_verifier() -> TokenVerifier:
    return verifier(get_settings().auth, config_dir())


@functools.cache
def openapi_document() -> dict[str, Any]:
    """The committed document (what clients were promised), read once."""
    return json.loads(OPENAPI_FILE.read_text())


def reset() -> None:
    """Forget every built component (tests that switch settings between modules)."""
    get_settings.cache_clear()
    wiring.reset()
    for cached in (mongo, definition_service, execution_service, subscriptions, pusher,
                   queued_pusher,
                   pushing_projector, rate_limiter):
        cached.cache_clear()
