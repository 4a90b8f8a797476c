"""Session-wide fixtures: settings for the test stage and one running local stack."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from chalicelib.config import Settings, load_settings
from infra.stack.paths import StackPaths
from infra.stack.supervisor import Supervisor


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings(environ={**os.environ, "SAGA_STAGE": "local"})


@pytest.fixture(scope="session")
def local_stack(settings: Settings) -> Iterator[Supervisor]:
    """The real servers, started once per session (a no-op when `make test` already did)."""
    supervisor = Supervisor(settings, StackPaths.default(), say=lambda line: None)
    # SAGA_TEST_SERVERS=mariadb,kafka brings up only those, for a partial run.
    only = [name for name in os.environ.get("SAGA_TEST_SERVERS", "").split(",") if name]
    supervisor.up(only)
    yield supervisor


@pytest.fixture
def unique() -> str:
    """A short unique suffix for names that must not collide between tests or runs."""
    return uuid.uuid4().hex[:10]
