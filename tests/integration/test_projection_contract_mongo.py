"""The read model's contract (tests/support/projection_contract.py) on MongoDB: the same tests
the in-memory fake passes, run against the production projector and reads, a database each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pymongo import MongoClient

from chalicelib.adapters.mongo.client import mongo_client
from chalicelib.adapters.mongo.open_callbacks import MongoOpenCallbacks
from chalicelib.adapters.mongo.projector import Projector, ensure_indexes
from chalicelib.adapters.mongo.read_model import MongoExecutionReadModel
from chalicelib.config import Settings

# Its asserts say what differed, as a test module's do.
pytest.register_assert_rewrite("tests.support.projection_contract")
from tests.support.projection_contract import ProjectionContract, ReadSide  # noqa: E402


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[MongoClient]:
    with mongo_client(settings.database.mongodb) as client:
        yield client


class TestMongoReadModel(ProjectionContract):
    @pytest.fixture
    def read_side(self, client: MongoClient, unique: str) -> Iterator[ReadSide]:
        db = client[f"projection_{unique}"]
        ensure_indexes(db)
        try:
            yield ReadSide(Projector(client, db), MongoExecutionReadModel(db),
                           MongoOpenCallbacks(db))
        finally:
            client.drop_database(db.name)
