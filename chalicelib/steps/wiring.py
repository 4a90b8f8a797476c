"""The step Lambdas' composition root: MySQL and the actions, nothing else.

A step never touches MongoDB, Kafka or the API's routing, so its cold start must not import
them: this module, unlike `chalicelib.runtime` (the API's), imports only what a step uses.
boto3 is imported on first use, by the one action kind that needs it (`lambda:` participants).
"""

from __future__ import annotations

import functools
from typing import Any

from chalicelib.adapters.mysql import MySQLConnector
from chalicelib.adapters.mysql_definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql_step_ledger import MySQLStepLedger
from chalicelib.config import Settings, get_settings
from chalicelib.steps.actions import BUILTIN_ACTIONS
from chalicelib.steps.registry import ActionRegistry
from chalicelib.steps.runtime import OutcomeRecorder, StepRuntime


def faults_enabled(settings: Settings) -> bool:
    # Never in prod, whatever the configuration says.
    return settings.saga.fault_injection_enabled and settings.stage != "prod"


def _lambda_client(settings: Settings) -> Any:
    from chalicelib.adapters import aws  # boto3: only for `lambda:` participants

    return aws.client("lambda", settings.aws)


def build_step_runtime(settings: Settings, connector: MySQLConnector) -> StepRuntime:
    registry = ActionRegistry(BUILTIN_ACTIONS, lambda_client=lambda: _lambda_client(settings))
    # Demo defaults are a local convenience: prod never fills in a missing input.
    defaults = settings.saga.demo_input_defaults if settings.stage != "prod" else {}
    return StepRuntime(MySQLStepLedger(connector), MySQLDefinitionStore(connector),
                       registry.resolve,
                       faults_enabled=faults_enabled(settings), input_defaults=defaults,
                       cache_definitions=settings.saga.caching_enabled)


@functools.cache
def connector() -> MySQLConnector:
    """One connection pool per process, kept across warm invocations."""
    return MySQLConnector(get_settings().database.mysql)


@functools.cache
def step_runtime() -> StepRuntime:
    return build_step_runtime(get_settings(), connector())


@functools.cache
def outcome_recorder() -> OutcomeRecorder:
    return OutcomeRecorder(MySQLStepLedger(connector()))


def reset() -> None:
    for cached in (connector, step_runtime, outcome_recorder):
        cached.cache_clear()
