"""Versioned schema migrations for the write model, applied in order, each exactly once.

Files named NNNN_description.sql sit beside this module. A named lock makes concurrent appliers
(several cold Lambdas, a CLI run) wait for each other instead of racing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pymysql

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_LOCK = "saga_schema_migrations"
_FILE = re.compile(r"(\d{4})_([a-z0-9_]+)\.sql")


@dataclass(frozen=True)
class Migration:
    number: int
    name: str
    statements: tuple[str, ...]


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.fullmatch(path.name)
        if not match:
            raise ValueError(f"migration file {path.name} is not named NNNN_description.sql")
        migrations.append(Migration(int(match[1]), match[2], _split(path.read_text())))
    numbers = [m.number for m in migrations]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"migration numbers must run 1..n without gaps, got {numbers}")
    return migrations


def _split(sql: str) -> tuple[str, ...]:
    # Our migrations hold no semicolons inside literals, so a plain split is exact.
    without_comments = "\n".join(line for line in sql.splitlines()
                                 if not line.lstrip().startswith("--"))
    return tuple(part.strip() for part in without_comments.split(";") if part.strip())


def applied(conn: pymysql.Connection) -> list[int]:
    with conn.cursor() as cur:
        cur.execute("""CREATE TABLE IF NOT EXISTS schema_migrations (
                           number INT NOT NULL PRIMARY KEY,
                           name VARCHAR(200) NOT NULL,
                           applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
                       ) ENGINE=InnoDB""")
        cur.execute("SELECT number FROM schema_migrations ORDER BY number")
        return [_first(row) for row in cur.fetchall()]


def _first(row: dict[str, int] | tuple[int, ...]) -> int:
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


def migrate(conn: pymysql.Connection, migrations: list[Migration] | None = None) -> list[str]:
    """Apply what is missing; returns the names applied. Safe to call from many processes."""
    migrations = load_migrations() if migrations is None else migrations
    with conn.cursor() as cur:
        cur.execute("SELECT GET_LOCK(%s, 60) AS got", (_LOCK,))
        if _first(cur.fetchone()) != 1:
            raise TimeoutError("another process held the schema migration lock for 60s")
    try:
        done = set(applied(conn))
        names = []
        for migration in migrations:
            if migration.number in done:
                continue
            # MySQL commits DDL implicitly, so a failed migration is reported with its
            # number and must be fixed forward; the record is written only after it succeeded.
            with conn.cursor() as cur:
                for statement in migration.statements:
                    cur.execute(statement)
                cur.execute("INSERT INTO schema_migrations (number, name) VALUES (%s, %s)",
                            (migration.number, migration.name))
            conn.commit()
            names.append(f"{migration.number:04d}_{migration.name}")
        return names
    finally:
        with conn.cursor() as cur:
            cur.execute("SELECT RELEASE_LOCK(%s)", (_LOCK,))
        # End the read transaction: left open, it would pin a snapshot from cold start and a
        # metadata lock on schema_migrations for as long as a warm Lambda lives.
        conn.commit()
