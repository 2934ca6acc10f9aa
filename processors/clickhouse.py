"""Connecting to ClickHouse (embedded chDB or a server) and applying the schema migrations."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from schemas.migrations import Migration, load_migrations

log = logging.getLogger(__name__)

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations
(
    version    UInt32,
    name       String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
-- A handful of rows, read whole at start-up: any order will do.
ENGINE = MergeTree ORDER BY version
"""


def connect(dsn: str, database: str, password: str = "") -> Client:
    """A client on `database`, created if missing. chDB: one process per data directory."""
    scheme = urlsplit(dsn).scheme
    if scheme not in ("chdb", "http", "https"):
        raise ValueError(
            f"ClickHouse URL must start with chdb://, http:// or https://, not {dsn!r}"
        )
    password_given = bool(password) and scheme != "chdb"
    bootstrap = clickhouse_connect.get_client(dsn=dsn, password=password if password_given else "")
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    return clickhouse_connect.get_client(
        dsn=dsn, database=database, password=password if password_given else ""
    )


def migrate(client: Client, migrations: list[Migration] | None = None) -> list[int]:
    """Apply the migrations not yet recorded, in order; returns the versions applied now."""
    client.command(_MIGRATIONS_TABLE)
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    applied = []
    for migration in migrations if migrations is not None else load_migrations():
        if migration.version in done:
            continue
        for statement in migration.statements:
            client.command(statement)
        client.insert(
            "schema_migrations", [[migration.version, migration.name]], ["version", "name"]
        )
        log.info("applied migration %04d_%s", migration.version, migration.name)
        applied.append(migration.version)
    return applied
