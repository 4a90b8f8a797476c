"""The step Lambdas' composition root: MySQL and the actions, nothing else.

A step never touches MongoDB, Kafka or the API's routing, so its cold start must not import
them: this module, unlike `chalicelib.runtime` (the API's), imports only what a step uses.
boto3 is imported on first use, by the one action kind that needs it (`lambda:` participants).
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.mysql import MySQLConnector
from chalicelib.adapters.mysql_definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql_step_ledger import MySQLStepLedger
from chalicelib.config import Settings, load_settings
from chalicelib.parts import Parts, ProcessRoot, part
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
    registry = ActionRegistry(BUILTIN_ACTIONS, lambda_client=lambda: _lambda_client(settings),
                              max_result_bytes=settings.saga.max_result_bytes)
    # Demo defaults are a local convenience: prod never fills in a missing input.
    defaults = settings.saga.demo_input_defaults if settings.stage != "prod" else {}
    return StepRuntime(MySQLStepLedger(connector), MySQLDefinitionStore(connector),
                       registry.resolve,
                       faults_enabled=faults_enabled(settings), input_defaults=defaults,
                       cache_definitions=settings.saga.caching_enabled,
                       max_result_bytes=settings.saga.max_result_bytes,
                       retriable_max_attempts=settings.saga.retriable_max_attempts,
                       task_timeout_margin_s=settings.saga.task_timeout_margin_s)


class StepContainer(Parts):
    """The step Lambdas' parts, built on first use and kept for the life of the process."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    @part
    def connector(self) -> MySQLConnector:
        """One connection pool per process, kept across warm invocations."""
        return MySQLConnector(self.settings.database.mysql)

    @part
    def step_runtime(self) -> StepRuntime:
        return build_step_runtime(self.settings, self.connector)

    @part
    def outcome_recorder(self) -> OutcomeRecorder:
        return OutcomeRecorder(MySQLStepLedger(self.connector),
                               MySQLDefinitionStore(self.connector))


# The process's StepContainer: built from the settings on first use.
PROCESS = ProcessRoot(lambda: StepContainer(load_settings()))
