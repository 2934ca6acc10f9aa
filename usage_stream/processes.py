"""The long-running processes: the collector, and a worker that also serves the read API."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import timedelta

import faust
import uvicorn
from fastapi import FastAPI
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from ingest import KafkaEventSink, create_collector
from ingest.limits import Limits
from ingest.metrics import CollectorMetrics
from ingest.ratelimit import RateLimiter
from processors.analytics_api import analytics_router
from processors.app import AppConfig, WorkerState, build_app
from processors.auth import read_key_tenant
from processors.batch import Processor
from processors.clickhouse import ClickHouse, open_clickhouse
from processors.event_store import ClickHouseEventStore
from processors.feature_usage import FeatureUsageProcessor
from processors.lag import ConsumerLagProbe
from processors.metering import MeteringProcessor
from processors.metrics import WorkerMetrics
from processors.progress import ClickHouseProgress
from processors.read_api import create_read_api
from processors.usage_api import usage_router
from schemas.config import ProductConfig, load_config
from usage_stream.activation_setup import add_activation
from usage_stream.settings import Settings
from usage_stream.topics import ensure_topics

log = logging.getLogger(__name__)


def run_collector(settings: Settings) -> None:
    sink = KafkaEventSink(
        settings.kafka_bootstrap,
        settings.events_topic,
        settings.produce_timeout_seconds,
        invalid_topic=settings.invalid_topic,
    )
    metrics = CollectorMetrics(CollectorRegistry(), settings.write_keys)
    limits = Limits(
        max_body_bytes=settings.max_body_bytes,
        max_batch_events=settings.max_batch_events,
        max_event_bytes=settings.max_event_bytes,
        max_future=timedelta(seconds=settings.max_future_seconds),
    )
    limiter = (
        RateLimiter(settings.rate_limit_events_per_second, settings.rate_limit_burst)
        if settings.rate_limit_events_per_second > 0
        else None
    )
    app = create_collector(
        sink, settings.tenant_for_write_key(), limits, metrics=metrics, rate_limiter=limiter
    )
    # Rejected events go to the invalid topic; create it (and the events topic) if Kafka is up,
    # in the background, since the collector also starts, not ready, while Kafka is down.
    threading.Thread(target=_ensure_topics_quietly, args=(settings,), daemon=True).start()
    uvicorn.run(app, host=settings.collector_host, port=settings.collector_port, log_level="info")


def _ensure_topics_quietly(settings: Settings) -> None:
    try:
        ensure_topics(
            settings.kafka_bootstrap,
            [settings.events_topic, settings.invalid_topic],
            settings.topic_partitions,
        )
    except KafkaError as exc:
        log.warning("could not check the topics (Kafka down?): %r", exc)


def worker_api(
    clickhouse: ClickHouse, settings: Settings, product: ProductConfig, ready: Callable[[], bool]
) -> FastAPI:
    """The worker's read API: raw events, the usage API and the analytics API."""
    tenant_of = read_key_tenant(settings.tenant_for_read_key())
    return create_read_api(
        clickhouse,
        settings.tenant_for_read_key(),
        ready,
        routers=[
            usage_router(clickhouse, product, tenant_of),
            analytics_router(clickhouse, product, tenant_of),
        ],
    )


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
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.watch(state, clickhouse)
    lag = ConsumerLagProbe(
        settings.kafka_bootstrap,
        settings.consumer_group,
        [settings.events_topic],
        metrics.set_consumer_lag,
    )
    config = AppConfig(
        app_id=settings.consumer_group,
        bootstrap=settings.kafka_bootstrap,
        events_topic=settings.events_topic,
        invalid_topic=settings.invalid_topic,
        batch_size=settings.sink_batch_size,
        batch_seconds=settings.sink_batch_seconds,
        datadir=str(settings.data_dir / "faust"),
    )
    product = load_config(settings.config_file)
    processors: list[Processor] = [
        MeteringProcessor(clickhouse, product),
        FeatureUsageProcessor(clickhouse, product.features),
    ]
    progress = ClickHouseProgress(clickhouse, settings.events_topic)
    app = build_app(config, store, processors, state, progress)
    add_activation(app, settings, clickhouse, product, metrics.activations_emitted)
    api = worker_api(clickhouse, settings, product, lambda: state.assigned and lag.reachable)
    metrics.serve(api)
    lag.start()
    server = uvicorn.Server(
        uvicorn.Config(api, host=settings.worker_host, port=settings.worker_port, log_level="info")
    )
    thread = threading.Thread(target=server.run, name="read-api", daemon=True)
    thread.start()
    try:
        faust.Worker(app, loglevel="INFO").execute_from_commandline()
    finally:
        server.should_exit = True
        lag.stop()
        thread.join(timeout=10)
