"""The read model's contract (tests/support/projection_contract.py) on the in-memory fake: what
the services' unit tests read from folds events, batches and counters as MongoDB's does."""

from __future__ import annotations

import pytest

from chalicelib.testing import InMemoryReadModel

# Its asserts say what differed, as a test module's do.
pytest.register_assert_rewrite("tests.support.projection_contract")
from tests.support.projection_contract import ProjectionContract, ReadSide  # noqa: E402


class TestInMemoryReadModel(ProjectionContract):
    @pytest.fixture
    def read_side(self) -> ReadSide:
        fake = InMemoryReadModel()
        return ReadSide(fake, fake, fake)
