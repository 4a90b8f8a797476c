"""Session-wide fixtures: the `test` stage, its own database, and one running local stack.

Tests run as stage `test`: their own MySQL database and their own Lambdas and state machines
in LocalStack, so they neither see nor litter what `make run` (stage `local`) holds, and can
run while it is up.
"""

from __future__ import annotations

import gc
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from tests.support import serial_ast  # noqa: F401  (on import: one thread parses at a time)

# Before anything reads the settings (they are cached per process).
os.environ["SAGA_STAGE"] = "test"
os.environ.setdefault("SAGA__DATABASE__MYSQL__DATABASE", "saga_db_test")
os.environ.setdefault("SAGA__DATABASE__MONGODB__DATABASE", "saga_db_test")
os.environ.setdefault("SAGA__KAFKA__TOPIC", "saga-events-test")
# Not the consumer group of `make run`'s projector, which may be running beside the tests.
os.environ.setdefault("SAGA__KAFKA__GROUP_ID", "saga-group-test")
# The test session's WebSocket gateway takes these ports (make run's uses 8001/8002).
os.environ.setdefault("SAGA__WEBSOCKET__PORT", "8011")
os.environ.setdefault("SAGA__WEBSOCKET__MANAGEMENT_ENDPOINT", "http://127.0.0.1:8012")
# A retriable step parks after 3 attempts (2 s and 4 s apart at most), not the default 5, so the
# parking case ends in seconds.
os.environ.setdefault("SAGA__SAGA__RETRIABLE_MAX_ATTEMPTS", "3")
# A Task waits 2 s past its step's own cut, and a compensation as long past its action's last
# deadline: enough for a Lambda started in the local executor, short enough for the timeout cases.
os.environ.setdefault("SAGA__SAGA__TASK_TIMEOUT_MARGIN", "2s")
# Tests poll executions far faster than a person would: the per-caller limit has its own tests.
os.environ.setdefault("SAGA__LIMITS__RATE_LIMIT_REQUESTS", "0")

# Imported after the stage is set (ruff allows it: os.environ calls are not statements it flags).
from chalicelib.adapters.mongo.client import mongo_client
from chalicelib.adapters.mysql import connector as mysql
from chalicelib.config import Settings, load_settings
from infra.stack.paths import StackPaths
from infra.stack.supervisor import Supervisor
from tests.support import sdk_venvs as sdk_venvs_support

# The participant SDK's fixtures (participant_server, saga_api): its pytest11 entry point registers
# them when it is installed (make venv); named here as well for a run that finds the SDK on
# PYTHONPATH. The plugin's name is its module's, so it is never registered twice.
pytest_plugins = ["saga_participant.testing"]

# Property tests take their number of examples from a profile: `unit` (the default) keeps the
# unit run short; `thorough` draws more (HYPOTHESIS_PROFILE=thorough, or
# --hypothesis-profile=thorough, which wins over the variable). Both keep what hypothesis
# loaded first (its `ci` profile on CI).
_loaded = hypothesis_settings.default
hypothesis_settings.register_profile("unit", _loaded, max_examples=50)
hypothesis_settings.register_profile("thorough", _loaded, max_examples=300)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "unit"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The fault suite stops and restarts servers: it runs after everything else.
    # The browser suite runs first: its `saga serve` has its own relay and projector, which
    # must not share the topic's consumer group with the session's (started by e2e tests).
    items.sort(key=lambda item: (item.get_closest_marker("fault") is not None,
                                 item.get_closest_marker("browser") is None))


def pytest_collection_finish(session: pytest.Session) -> None:
    # A module imported by collection that sets another stage (bench.harness sets `bench`)
    # would have the whole session deploy and use that stage's Lambdas, stack and databases.
    if os.environ.get("SAGA_STAGE") != "test":
        raise pytest.UsageError(
            f"collecting the tests set SAGA_STAGE to {os.environ.get('SAGA_STAGE')!r}: a test "
            "module imports something that chooses a stage (bench.harness does); the session "
            "must run as stage 'test'")
    # What collection imported (modules, classes, strategies) lives until the end: frozen, the
    # garbage collector stops walking it in every full collection, and at exit.
    gc.collect()
    gc.freeze()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def local_stack(settings: Settings) -> Iterator[Supervisor]:
    """The real servers, started once per session (a no-op when `make test` already did),
    and a fresh test database."""
    supervisor = Supervisor(settings, StackPaths.default(), say=lambda line: None)
    # SAGA_TEST_SERVERS=mariadb,kafka brings up only those, for a partial run.
    only = [name for name in os.environ.get("SAGA_TEST_SERVERS", "").split(",") if name]
    supervisor.up(only)
    if not only or "mariadb" in only:
        mysql.recreate_database(settings.database.mysql, settings.database.mysql.database)
    if not only or "mongodb" in only:
        with mongo_client(settings.database.mongodb) as client:
            client.drop_database(settings.database.mongodb.database)
    yield supervisor


@pytest.fixture
def unique() -> str:
    """A short unique suffix for names that must not collide between tests or runs."""
    return uuid.uuid4().hex[:10]


# -- the participant SDK in fresh venvs (tests/support/sdk_venvs.py), made on first use -------

@pytest.fixture(scope="session")
def sdk_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sdk_venvs_support.sdk_source(tmp_path_factory)


@pytest.fixture(scope="session")
def sdk_wheel(tmp_path_factory: pytest.TempPathFactory, sdk_source: Path) -> Path:
    return sdk_venvs_support.sdk_wheel(tmp_path_factory, sdk_source)


@pytest.fixture(scope="session")
def sdk_venvs(tmp_path_factory: pytest.TempPathFactory, sdk_source: Path,
              sdk_wheel: Path) -> Callable[[str], Path]:
    return sdk_venvs_support.sdk_venvs(tmp_path_factory, sdk_source, sdk_wheel)

