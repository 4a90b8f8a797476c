"""The step Lambdas' composition root: MySQL and the actions, nothing else.

A step never touches MongoDB, Kafka or the API's routing, so its cold start must not import
them: this module, unlike `chalicelib.roots.container` (the API's root), imports only what a step
uses. boto3 is imported on first use, by the one action kind that needs it (`lambda:`
participants).
"""

from __future__ import annotations

import functools
from typing import Any

from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.definitions import MySQLDefinitionStore
from chalicelib.adapters.mysql.step_ledger import MySQLStepLedger
from chalicelib.config import Settings, load_settings
from chalicelib.demo import BUILTIN_ACTIONS
from chalicelib.http.paths import callback_links
from chalicelib.roots.parts import Parts, ProcessRoot, part
from chalicelib.roots.step_registry import ActionRegistry
from chalicelib.usecases.steps.attempt import AttemptRunner
from chalicelib.usecases.steps.children import ChildRunner
from chalicelib.usecases.steps.deadlines import DeadlineKeeper
from chalicelib.usecases.steps.fanouts import FanOutRunner
from chalicelib.usecases.steps.recorder import OutcomeRecorder
from chalicelib.usecases.steps.waits import TimerRunner


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
                             max_fanout_items=saga.max_fanout_items,
                             retriable_max_attempts=saga.retriable_max_attempts,
                             task_timeout_margin_s=saga.task_timeout_margin_s,
                             callback_links=functools.partial(
                                 callback_links, self.settings.server.base_url()))

    @part
    def timer_runner(self) -> TimerRunner:
        runner = self.attempt_runner
        return TimerRunner(self.step_ledger, self.definitions, runner.outcomes, runner.clock,
                           max_wait_s=self.settings.saga.max_wait_s,
                           cache_definitions=self.settings.saga.caching_enabled,
                           task_timeout_margin_s=self.settings.saga.task_timeout_margin_s)

    @part
    def fanout_runner(self) -> FanOutRunner:
        runner, saga = self.attempt_runner, self.settings.saga
        return FanOutRunner(self.step_ledger, self.definitions, runner.outcomes, runner.clock,
                            max_items=saga.max_fanout_items,
                            max_concurrency=saga.max_fanout_concurrency,
                            cache_definitions=saga.caching_enabled)

    @part
    def child_runner(self) -> ChildRunner:
        from chalicelib.adapters.stepfunctions.child_runs import StepFunctionsChildRuns

        runner, saga = self.attempt_runner, self.settings.saga
        return ChildRunner(self.step_ledger, self.definitions, runner.outcomes,
                           StepFunctionsChildRuns(self.settings.stage), runner.clock,
                           max_depth=saga.max_child_depth,
                           cache_definitions=saga.caching_enabled)

    @part
    def outcome_recorder(self) -> OutcomeRecorder:
        return OutcomeRecorder(self.step_ledger, self.definitions)

    @part
    def deadline_keeper(self) -> DeadlineKeeper:
        return DeadlineKeeper(self.step_ledger, self.definitions,
                              compensation_enabled=self.settings.saga.compensation_enabled,
                              clock=self.attempt_runner.clock)


# The process's StepContainer: built from the settings on first use.
PROCESS = ProcessRoot(lambda: StepContainer(load_settings()))
