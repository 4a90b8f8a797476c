"""Integration tests all run against the one session-wide local stack."""

from __future__ import annotations

import pytest

from infra.stack.supervisor import Supervisor


@pytest.fixture(autouse=True, scope="session")
def _stack_is_up(local_stack: Supervisor) -> Supervisor:
    return local_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
