"""How the real adapters are wired to the services: plain builders that take what they need
and keep nothing, and the process's one Container (chalicelib.container), which the handlers
get from `container()`.

Lambda containers are reused across invocations, so the process keeps its Container, and with
it its pools and clients, for its whole life. The schema is migrated at deploy, by
`saga db migrate`, and once per process when the Container's MySQL pool is made: no builder
migrates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config as BotoConfig
from kafka import KafkaConsumer
from pymongo import MongoClient

from chalicelib.adapters import aws
from chalicelib.adapters.kafka import KafkaPublisher
from chalicelib.adapters.kafka import consumer as kafka_consumer
from chalicelib.adapters.mongo import read_model
from chalicelib.adapters.mongo_read_model import MongoExecutionReadModel
from chalicelib.adapters.mysql import MySQLConnector
from chalicelib.adapters.mysql_cleanup import MySQLCleanup
from chalicelib.adapters.mysql_dead_letters import MySQLDeadLetters
from chalicelib.adapters.mysql_definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql_executions import MySQLExecutionStore
from chalicelib.adapters.stepfunctions.arns import FunctionNames
from chalicelib.adapters.stepfunctions.compiler import CompileOptions
from chalicelib.adapters.stepfunctions.engine import StepFunctionsEngine
from chalicelib.config import Settings, get_settings, load_settings
from chalicelib.events.projector import Projector, ensure_indexes
from chalicelib.events.relay import OutboxRelay
from chalicelib.parts import ProcessRoot
from chalicelib.ports import Actor
from chalicelib.saga.durations import parse_duration_ms
from chalicelib.saga.execution_service import ExecutionPolicy, ExecutionService
from chalicelib.saga.lifecycle import Phase
from chalicelib.saga.models import Step
from chalicelib.saga.reconciler import Reconciler
from chalicelib.saga.service import DefinitionService, Limits
from chalicelib.saga.validation import ValidationPolicy
from chalicelib.steps.actions import BUILTIN_ACTIONS, FAMILY_OF
from chalicelib.steps.registry import family_of, function_name
from chalicelib.steps.wiring import faults_enabled

if TYPE_CHECKING:
    from chalicelib.container import Container

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


def build_engine(settings: Settings) -> StepFunctionsEngine:
    names = function_names(settings)

    def function_for(step: Step, phase: Phase) -> str:
        return names.arn(function_name(family_of(step.target(phase), FAMILY_OF)))

    return StepFunctionsEngine(
        aws.client("stepfunctions", settings.aws), stage=settings.stage,
        role_arn=state_machine_role(settings, names.account),
        region=settings.aws.region, account=names.account, function_for=function_for,
        recorder_arn=names.arn(RECORDER_FUNCTION),
        options=CompileOptions(retry_enabled=settings.saga.retry_enabled,
                               compensation_enabled=settings.saga.compensation_enabled,
                               retriable_max_attempts=settings.saga.retriable_max_attempts,
                               task_timeout_margin_s=settings.saga.task_timeout_margin_s))


def validation_policy(settings: Settings) -> ValidationPolicy:
    return ValidationPolicy.from_settings(settings.saga, actions=frozenset(BUILTIN_ACTIONS))


def build_definition_service(settings: Settings, connector: MySQLConnector, *,
                             engine: StepFunctionsEngine | None = None
                             ) -> DefinitionService:
    store = MySQLDefinitionStore(connector, auditing=settings.saga.auditing_enabled)
    return DefinitionService(store, validation_policy(settings),
                             Limits(settings.saga.max_sagas, settings.saga.max_steps),
                             executions=MySQLExecutionStore(connector),
                             engine=engine or build_engine(settings))


def build_execution_service(settings: Settings, connector: MySQLConnector, mongo: MongoClient,
                            *, engine: StepFunctionsEngine | None = None
                            ) -> ExecutionService:
    return ExecutionService(
        MySQLDefinitionStore(connector, auditing=settings.saga.auditing_enabled),
        MySQLExecutionStore(connector), engine or build_engine(settings),
        ExecutionPolicy(faults_enabled=faults_enabled(settings),
                        max_input_bytes=settings.limits.max_input_bytes,
                        max_event_bytes=settings.kafka.max_request_size),
        MongoExecutionReadModel(read_model(mongo, settings.database.mongodb)))


def build_reconciler(settings: Settings, connector: MySQLConnector,
                     grace_seconds: float | None = None) -> Reconciler:
    grace = parse_duration_ms(settings.saga.reconcile_after) / 1000
    return Reconciler(MySQLExecutionStore(connector), build_engine(settings),
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
    report = MySQLCleanup(connector, event_retention=timedelta(days=7)).run(actor)
    engine = build_engine(settings)
    by_saga: dict[str, list[int]] = {}
    for saga_id, revision in report.orphan_versions:
        by_saga.setdefault(saga_id, []).append(revision)
    for saga_id, revisions in by_saga.items():
        engine.discard(saga_id, revisions)
    return {"removed": {"idempotency_records": report.idempotency_records,
                        "published_events": report.published_events,
                        "orphan_versions": [{"saga_id": s, "revision": r}
                                            for s, r in report.orphan_versions]}}


def build_relay(settings: Settings, connector: MySQLConnector) -> OutboxRelay:
    return OutboxRelay(connector, KafkaPublisher(settings.kafka), settings.kafka.topic)


def build_projector(settings: Settings, client: MongoClient,
                    on_applied: Callable[[Mapping[str, Any]], None] | None = None) -> Projector:
    database = read_model(client, settings.database.mongodb)
    ensure_indexes(database)
    return Projector(client, database, on_applied)


def build_dead_letters(connector: MySQLConnector) -> MySQLDeadLetters:
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


# -- the process's container ---------------------------------------------------------------------

def _build() -> Container:
    from chalicelib.container import Container  # it builds with this module's builders

    return Container(load_settings())


# The process's Container: built from the settings on first use, then kept.
PROCESS: ProcessRoot[Container] = ProcessRoot(_build)


def container() -> Container:
    """The process's Container."""
    return PROCESS.get()


def use(replacement: Container | None) -> None:
    """Make `replacement` the process's Container (None: build anew from the settings, read
    again, on next use). For tools and tests that change settings mid-process; the replaced
    one stays open for whatever was built from it."""
    get_settings.cache_clear()
    PROCESS.use(replacement)
