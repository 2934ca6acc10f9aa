"""Connecting to a ClickHouse server over HTTP and applying the schema migrations."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import clickhouse_connect
import msgspec
from clickhouse_connect.driver.client import Client

from schemas.migrations import Migration, load_migrations

log = logging.getLogger(__name__)
# Decimals as JSON numbers, exactly as written (a Decimal(38, 9) column reads them as such).
_JSON_ROW = msgspec.json.Encoder(decimal_format="number").encode

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


# chdb:// once opened the chDB engine inside the process; measured no cheaper in total CPU than
# a server over HTTP (docs/performance.md), it was removed.
_NO_CHDB = (
    "chdb:// (the chDB engine inside the process) is no longer supported: every process is a"
    " client of a ClickHouse server over HTTP. Run `usage-stream clickhouse start` for a local"
    " server (`usage-stream up` starts one too), or point USAGE_STREAM_CLICKHOUSE_URL at a"
    " server: http(s)://user@host:port."
)


def connect(dsn: str, database: str, password: str = "") -> Client:
    """A client on `database` of the server at `dsn` (http:// or https://), created if missing."""
    scheme = urlsplit(dsn).scheme
    if scheme == "chdb":
        raise ValueError(_NO_CHDB)
    if scheme not in ("http", "https"):
        raise ValueError(f"ClickHouse URL must start with http:// or https://, not {dsn!r}")
    bootstrap = clickhouse_connect.get_client(dsn=dsn, password=password)
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    return clickhouse_connect.get_client(dsn=dsn, database=database, password=password)


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


class ClickHouse:
    """One client shared by a process's writers and readers, one statement at a time.

    The worker's sinks and its read API share this client, whose HTTP session runs one query at
    a time; the lock keeps their calls apart.
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self._lock = threading.Lock()
        # Observers of every insert: (table, rows, seconds, failed); the worker's metrics.
        self.on_insert: list[Callable[[str, int, float, bool], None]] = []

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        with self._lock:
            result = self.client.query(sql, parameters=parameters or {})
        return [tuple(row) for row in result.result_rows]

    def query_np(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        """The result as a numpy array: for columns of millions of numbers."""
        with self._lock:
            return self.client.query_np(sql, parameters=parameters or {})

    def insert(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        with self._writing(table, len(rows)):
            self.client.insert(table, list(rows), column_names=list(columns))

    def insert_json(
        self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]
    ) -> None:
        """`insert`, with the rows written as JSON lines by msgspec and parsed by the engine:
        for wide rows of decimals, maps and arrays (meter_minutes) ~3.6 µs of CPU per row
        against 5 to 7 for clickhouse-connect's Native encoding in Python (docs/performance.md)."""
        body = b"\n".join(map(_JSON_ROW, rows))
        self.raw_insert(table, body, {}, columns, "JSONCompactEachRow", len(rows))

    def raw_insert(
        self,
        table: str,
        body: bytes,
        settings: dict[str, Any],
        columns: Sequence[str] | None = None,
        fmt: str = "JSONEachRow",
        rows: int | None = None,
    ) -> None:
        """Rows already written in `fmt`, one per line, parsed by the engine."""
        names = list(columns) if columns is not None else None
        with self._writing(table, rows if rows is not None else body.count(b"\n") + 1):
            self.client.raw_insert(table, names, body, settings=settings, fmt=fmt)

    def insert_select(self, table: str, sql: str, parameters: dict[str, Any], rows: int) -> None:
        """`INSERT INTO table … SELECT …`: rows ClickHouse builds itself from rows it holds.
        `rows`, for the metrics: how many rows the select reads (the local server on chDB
        reports no count back)."""
        with self._writing(table, rows):
            self.client.command(f"INSERT INTO {table} {sql}", parameters=parameters)

    @contextmanager
    def _writing(self, table: str, rows: int) -> Iterator[None]:
        """One write, under the lock, reported to every observer whether it failed or not."""
        with self._lock:
            started, failed = time.perf_counter(), True
            try:
                yield
                failed = False
            finally:
                for observe in self.on_insert:
                    observe(table, rows, time.perf_counter() - started, failed)

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        with self._lock:
            self.client.command(sql, parameters=parameters or {})


def open_clickhouse(dsn: str, database: str, password: str = "") -> ClickHouse:
    """Connected, every migration applied: how each process that owns ClickHouse starts."""
    client = connect(dsn, database, password)
    migrate(client)
    return ClickHouse(client)
