"""Shared fixtures: one real Kafka broker per session (started lazily), a fresh corner per test."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from processors.storage.clickhouse import ClickHouse, open_clickhouse
from runtime.topics import ensure_topics
from schemas.config import EXAMPLE_CONFIG
from tests.harness import Service
from usage_stream.broker import LocalBroker
from usage_stream.clickhouse_server import LocalClickHouse
from usage_stream.up import free_port


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A single-node KRaft broker from the Maven jars, stopped when the session ends."""
    broker = LocalBroker(
        tmp_path_factory.mktemp("kafka"), port=free_port(), controller_port=free_port()
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[LocalBroker]:
    """A broker of the test's own, for tests that kill or stop Kafka: the session's runs on."""
    broker = LocalBroker(
        tmp_path / "private-kafka", port=free_port(), controller_port=free_port(), heap="512m"
    )
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class Corner:
    """Names and settings of one test's private corner of the broker and of ClickHouse."""

    env: dict[str, str]
    home: Path
    write_key: str
    read_key: str
    tenant: str

    def service(self, command: str, **overrides: str) -> Service:
        port = free_port()
        prefix = (
            "USAGE_STREAM_COLLECTOR_PORT" if command == "collector" else "USAGE_STREAM_WORKER_PORT"
        )
        env = {**self.env, prefix: str(port), **overrides}
        return Service(command, env, port, self.home / f"{command}-{port}.log")


@pytest.fixture
def corner(kafka: LocalBroker, clickhouse_server: LocalClickHouse, tmp_path: Path) -> Corner:
    tag = uuid.uuid4().hex[:10]
    tenant = "acme"
    write_key, read_key = f"wk_{tag}", f"rk_{tag}"
    env = {
        "USAGE_STREAM_DATA_DIR": str(tmp_path / "data"),
        "USAGE_STREAM_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "USAGE_STREAM_EVENTS_TOPIC": f"events-{tag}",
        "USAGE_STREAM_INVALID_TOPIC": f"events.invalid-{tag}",
        "USAGE_STREAM_ACTIVATIONS_TOPIC": f"activations-{tag}",
        "USAGE_STREAM_HEALTH_TOPIC": f"account_health-{tag}",
        "USAGE_STREAM_ALERTS_TOPIC": f"usage_alerts-{tag}",
        "USAGE_STREAM_TOPIC_PARTITIONS": "3",
        "USAGE_STREAM_CONSUMER_GROUP": f"group-{tag}",
        "USAGE_STREAM_WRITE_KEYS": json.dumps({tenant: write_key, "other": f"wk_other_{tag}"}),
        "USAGE_STREAM_READ_KEYS": json.dumps({tenant: read_key, "other": f"rk_other_{tag}"}),
        "USAGE_STREAM_SINK_BATCH_SECONDS": "0.1",
        "USAGE_STREAM_CONFIG_FILE": str(EXAMPLE_CONFIG),
        "USAGE_STREAM_CLICKHOUSE_URL": clickhouse_server.dsn,
        "USAGE_STREAM_CLICKHOUSE_PASSWORD": clickhouse_server.password,
        "USAGE_STREAM_CLICKHOUSE_DATABASE": f"test_{tag}",
    }
    ensure_topics(kafka.bootstrap, [env["USAGE_STREAM_EVENTS_TOPIC"]], 3)
    return Corner(env, tmp_path, write_key, read_key, tenant)


@pytest.fixture
def worker(corner: Corner) -> Iterator[Service]:
    service = corner.service("worker").start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture
def collector(corner: Corner) -> Iterator[Service]:
    service = corner.service("collector").start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalClickHouse]:
    """One local ClickHouse server for the session, as production has one: the tests, the
    workers and the CLI are its clients over HTTP, each test in a database of its own."""
    server = LocalClickHouse(
        tmp_path_factory.mktemp("clickhouse-server"), http_port=free_port(), tcp_port=free_port()
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def clickhouse(clickhouse_server: LocalClickHouse) -> Iterator[ClickHouse]:
    database = f"test_{uuid.uuid4().hex[:12]}"
    clickhouse = open_clickhouse(clickhouse_server.dsn, database, clickhouse_server.password)
    try:
        yield clickhouse
    finally:
        clickhouse.command(f"DROP DATABASE IF EXISTS {database}")
