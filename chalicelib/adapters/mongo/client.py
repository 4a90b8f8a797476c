"""MongoDB client for the read model: one pooled client per process."""

from __future__ import annotations

from pymongo import MongoClient
from pymongo.database import Database

from chalicelib.config import MongoSettings
from chalicelib.durations import parse_duration_ms


def mongo_client(settings: MongoSettings) -> MongoClient:
    return MongoClient(
        settings.uri,
        maxPoolSize=settings.max_pool_size,
        minPoolSize=0,  # no idle sockets held open by short-lived Lambda containers
        maxIdleTimeMS=parse_duration_ms(settings.max_idle_time),
        serverSelectionTimeoutMS=3000,
        connectTimeoutMS=3000,
        tz_aware=True,
    )


def read_model(client: MongoClient, settings: MongoSettings) -> Database:
    return client[settings.database]
