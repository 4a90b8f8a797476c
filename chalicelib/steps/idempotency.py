"""Powertools idempotency records in MySQL, so a second delivery of a step returns the first
delivery's result without running the step again.

This is the fast path. The step runtime's own check (the step run's status, read under a row
lock in the step's transaction) is what makes effects exactly-once even when an idempotency
record is lost or has expired.
"""

from __future__ import annotations

import datetime
from typing import Any

import pymysql
from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from chalicelib.adapters.mysql import MySQLConnector

_INPROGRESS = "INPROGRESS"
_COMPLETED = "COMPLETED"


class MySQLPersistenceLayer(BasePersistenceLayer):
    def __init__(self, connector: MySQLConnector) -> None:
        super().__init__()
        self._db = connector

    @staticmethod
    def _record(row: dict[str, Any]) -> DataRecord:
        return DataRecord(idempotency_key=row["id"], status=row["status"],
                          expiry_timestamp=row["expiry_timestamp"],
                          in_progress_expiry_timestamp=row["in_progress_expiry"],
                          response_data=row["response_data"] or "",
                          payload_hash=row["payload_hash"] or "")

    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self._db.transaction() as cur:
            cur.execute("SELECT * FROM idempotency_records WHERE id = %s", (idempotency_key,))
            row = cur.fetchone()
        if row is None:
            raise IdempotencyItemNotFoundError
        return self._record(row)

    def _put_record(self, data_record: DataRecord) -> None:
        with self._db.transaction() as cur:
            try:
                cur.execute(
                    "INSERT INTO idempotency_records (id, status, expiry_timestamp, "
                    "in_progress_expiry, payload_hash) VALUES (%s, %s, %s, %s, %s)",
                    (data_record.idempotency_key, data_record.status,
                     data_record.expiry_timestamp, data_record.in_progress_expiry_timestamp,
                     data_record.payload_hash))
                return
            except pymysql.IntegrityError:
                pass
            # The key exists: it may still be valid, or be an orphan of a timed-out invocation.
            cur.execute("SELECT * FROM idempotency_records WHERE id = %s FOR UPDATE",
                        (data_record.idempotency_key,))
            row = cur.fetchone()
            assert row is not None
            existing = self._record(row)
            now = datetime.datetime.now()
            if existing.status == _COMPLETED and not existing.is_expired:
                raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
            in_progress_until = existing.in_progress_expiry_timestamp
            if existing.status == _INPROGRESS and not existing.is_expired and (
                    in_progress_until is None or in_progress_until > now.timestamp() * 1000):
                raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
            cur.execute(
                "UPDATE idempotency_records SET status = %s, expiry_timestamp = %s, "
                "in_progress_expiry = %s, response_data = NULL, payload_hash = %s WHERE id = %s",
                (data_record.status, data_record.expiry_timestamp,
                 data_record.in_progress_expiry_timestamp, data_record.payload_hash,
                 data_record.idempotency_key))

    def _update_record(self, data_record: DataRecord) -> None:
        with self._db.transaction() as cur:
            cur.execute(
                "UPDATE idempotency_records SET status = %s, expiry_timestamp = %s, "
                "response_data = %s, payload_hash = %s WHERE id = %s",
                (data_record.status, data_record.expiry_timestamp, data_record.response_data,
                 data_record.payload_hash, data_record.idempotency_key))

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._db.transaction() as cur:
            cur.execute("DELETE FROM idempotency_records WHERE id = %s",
                        (data_record.idempotency_key,))
