"""The step Lambdas' composition root: MySQL and the actions, nothing else.

A step never touches MongoDB, Kafka or the API's routing, so its cold start must not import
them: this module, unlike `chalicelib.container` (the API's root), imports only what a step
uses. boto3 is imported on first use, by the one action kind that needs it (`lambda:`
participants).
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.mysql import MySQLConnector
from chalicelib.adapters.mysql_definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql_step_ledger import MySQLStepLedger
from chalicelib.config import Settings, load_settings
from chalicelib.parts import Parts, ProcessRoot, part
from chalicelib.steps.actions import BUILTIN_ACTIONS
from chalicelib.steps.attempt import AttemptRunner
from chalicelib.steps.recorder import OutcomeRecorder
from chalicelib.steps.registry import ActionRegistry


def faults_enabled(settings: Settings) -> bool:
    # Never in prod, whatever the configuration says.
    return settings.saga.fault_injection_enabled and settings.stage != "prod"


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
    def step_ledger(self) -> MySQLStepLedger:
        return MySQLStepLedger(self.connector)

    @part
    def definitions(self) -> MySQLDefinitionStore:
        return MySQLDefinitionStore(self.connector)

    @part
    def lambda_client(self) -> Any:
        """The Lambda API, for `lambda:` participants (boto3 is imported here, on first use)."""
        from chalicelib.adapters import aws

        return aws.client("lambda", self.settings.aws)

    @part
    def action_registry(self) -> ActionRegistry:
        return ActionRegistry(BUILTIN_ACTIONS, lambda_client=lambda: self.lambda_client,
                              max_result_bytes=self.settings.saga.max_result_bytes)

    @part
    def attempt_runner(self) -> AttemptRunner:
        saga = self.settings.saga
        # Demo defaults are a local convenience: prod never fills in a missing input.
        defaults = saga.demo_input_defaults if self.settings.stage != "prod" else {}
        return AttemptRunner(self.step_ledger, self.definitions, self.action_registry.resolve,
                             faults_enabled=faults_enabled(self.settings),
                             input_defaults=defaults, cache_definitions=saga.caching_enabled,
                             max_result_bytes=saga.max_result_bytes,
                             retriable_max_attempts=saga.retriable_max_attempts,
                             task_timeout_margin_s=saga.task_timeout_margin_s)

    @part
    def outcome_recorder(self) -> OutcomeRecorder:
        return OutcomeRecorder(self.step_ledger, self.definitions)


# The process's StepContainer: built from the settings on first use.
PROCESS = ProcessRoot(lambda: StepContainer(load_settings()))
