"""The long-running processes: the collector, and a worker that also serves the read API."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import faust
import uvicorn

from ingest import KafkaEventSink, create_collector
from processors.app import AppConfig, WorkerState, build_app
from processors.auth import read_key_tenant
from processors.clickhouse import open_clickhouse
from processors.event_store import ClickHouseEventStore
from processors.metering import MeteringProcessor
from processors.read_api import create_read_api
from processors.usage_api import usage_router
from schemas.config import load_config
from usage_stream.settings import Settings
from usage_stream.topics import ensure_topics

log = logging.getLogger(__name__)


def run_collector(settings: Settings) -> None:
    sink = KafkaEventSink(
        settings.kafka_bootstrap, settings.events_topic, settings.produce_timeout_seconds
    )
    app = create_collector(sink, settings.tenant_for_write_key(), settings.max_body_bytes)
    uvicorn.run(app, host=settings.collector_host, port=settings.collector_port, log_level="info")


def run_worker(settings: Settings) -> None:
    """Faust consumes on the main thread; the read API answers from a thread beside it, on the
    same ClickHouse client (with chDB, only this process may open the data directory)."""
    clickhouse = open_clickhouse(
        settings.clickhouse_dsn,
        settings.clickhouse_database,
        settings.clickhouse_password.get_secret_value(),
    )
    ensure_topics(
        settings.kafka_bootstrap,
        [settings.events_topic, settings.invalid_topic],
        settings.topic_partitions,
    )
    store = ClickHouseEventStore(clickhouse, timedelta(days=settings.dedup_horizon_days))
    state = WorkerState()
    config = AppConfig(
        app_id=settings.consumer_group,
        bootstrap=settings.kafka_bootstrap,
        events_topic=settings.events_topic,
        invalid_topic=settings.invalid_topic,
        batch_size=settings.sink_batch_size,
        batch_seconds=settings.sink_batch_seconds,
    )
    product = load_config(settings.config_file)
    processors = [MeteringProcessor(clickhouse, product)]
    app = build_app(config, store, processors, state)
    tenant_of = read_key_tenant(settings.tenant_for_read_key())
    api = create_read_api(
        clickhouse,
        settings.tenant_for_read_key(),
        lambda: state.assigned,
        routers=[usage_router(clickhouse, product, tenant_of)],
    )
    server = uvicorn.Server(
        uvicorn.Config(api, host=settings.worker_host, port=settings.worker_port, log_level="info")
    )
    thread = threading.Thread(target=server.run, name="read-api", daemon=True)
    thread.start()
    try:
        faust.Worker(app, loglevel="INFO").execute_from_commandline()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
