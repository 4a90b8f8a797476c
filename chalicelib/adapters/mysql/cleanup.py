"""Cleanup of what nothing needs any more, in one transaction, with an audit row."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.usecases.ports import Actor, CleanupReport


class MySQLCleanup:
    def __init__(self, connector: MySQLConnector, *, event_retention: timedelta) -> None:
        self._db = connector
        self._event_retention = event_retention

    def run(self, actor: Actor) -> CleanupReport:
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._db.transaction() as cur:
            cur.execute("DELETE FROM idempotency_records WHERE expiry_timestamp < %s",
                        (int(time.time()),))
            idempotency = cur.rowcount
            cur.execute("DELETE FROM outbox WHERE published_at IS NOT NULL "
                        "AND published_at < %s", (now - self._event_retention,))
            published = cur.rowcount
            # Versions of destroyed sagas that no execution ran any more.
            cur.execute("SELECT v.saga_id, v.revision FROM saga_versions v "
                        "LEFT JOIN sagas s ON s.id = v.saga_id "
                        "WHERE s.id IS NULL AND NOT EXISTS (SELECT 1 FROM executions e "
                        "WHERE e.saga_id = v.saga_id AND e.revision = v.revision) "
                        "FOR UPDATE")
            orphans = [(row["saga_id"], row["revision"]) for row in cur.fetchall()]
            for saga_id, revision in orphans:
                cur.execute("DELETE FROM saga_versions WHERE saga_id = %s AND revision = %s",
                            (saga_id, revision))
            report = CleanupReport(idempotency, published, orphans)
            cur.execute(
                "INSERT INTO audit_log (at, actor, action, entity_type, entity_id, request_id, "
                "before_state, after_state) VALUES (%s, %s, 'cleanup', 'service', 'cleanup', "
                "%s, NULL, %s)",
                (now, actor.name, actor.request_id,
                 json.dumps({"idempotency_records": idempotency, "published_events": published,
                             "orphan_versions": len(orphans)})))
        return report
