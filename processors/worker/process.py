"""The worker process: faust consuming `events` into every processor, and the read API beside it."""

from __future__ import annotations

import logging
import os
import threading
from datetime import datetime, timedelta
from typing import Any

import faust
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from processors.account_health.watch import HealthWatch
from processors.activation.setup import add_activation
from processors.alerts.setup import add_alerts
from processors.api.app import create_read_api
from processors.storage.clickhouse import ClickHouse, open_clickhouse
from processors.worker.app import AppConfig, WorkerState, build_worker, faust_app
from processors.worker.bulk import WorkerApp
from processors.worker.lag import ConsumerLagProbe, Reading
from processors.worker.metrics import WorkerMetrics
from processors.worker.pipeline import build_pipeline
from processors.worker_progress.receipts import CaughtUp
from processors.worker_progress.store import (
    ClickHouseWorkerProgress,
    WorkerProgress,
    complete_through,
)
from runtime.heap import settle
from runtime.topics import ensure_topics, ensure_topics_with_config, when_kafka_answers
from schemas.config import ProductConfig, load_config
from schemas.settings import Settings

log = logging.getLogger(__name__)
STOP_SECONDS = 8.0  # from SIGTERM to exit, however stopping goes


class WorkerProcess(faust.Worker):
    """faust's process runner, with a deadline on stopping. With Kafka down, a graceful stop
    waits out every client's timeouts (a minute); past STOP_SECONDS the process exits anyway,
    which loses nothing: offsets are committed only for batches already durable, and the rest
    is read again, counted once."""

    def _schedule_shutdown(self, signal: Any) -> None:
        deadline = threading.Timer(STOP_SECONDS, _exit_now)
        deadline.daemon = True  # a stop that finishes in time is not held up by it
        deadline.start()
        super()._schedule_shutdown(signal)


def _exit_now() -> None:
    log.warning("not stopped within %.0f s (Kafka down?): exiting now", STOP_SECONDS)
    logging.shutdown()
    os._exit(0)


class Completeness:
    """What the worker learns from each lag reading besides the lag: the receipt time of the
    partitions it has written to their end, then how complete the numbers are (`latest`, which
    /metrics and the usage answers give). Runs on the probe's thread; the ClickHouse client
    serialises it with the batches' writes. `latest` lags the table by up to one reading, which
    only makes it earlier: nothing is called complete too soon."""

    def __init__(
        self,
        settings: Settings,
        clickhouse: ClickHouse,
        progress: WorkerProgress,
        metrics: WorkerMetrics,
    ) -> None:
        self._topic = settings.events_topic
        self._clickhouse = clickhouse
        self._metrics = metrics
        self._caught_up = CaughtUp(progress, timedelta(seconds=settings.receipt_slack_seconds))
        self.latest: datetime | None = None

    def __call__(self, reading: Reading) -> None:
        end = {p: offset for (topic, p), offset in reading.end.items() if topic == self._topic}
        self._caught_up.record(reading.asked_at, end)
        self.latest = complete_through(self._clickhouse, self._topic, len(end))
        self._metrics.set_complete_through(self._topic, self.latest)


def run_worker(settings: Settings) -> None:
    """Faust consumes on the main thread; the read API answers from a thread beside it, on the
    same ClickHouse client."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)  # faust keeps its tables there
    clickhouse = open_clickhouse(
        settings.clickhouse_dsn,
        settings.clickhouse_database,
        settings.clickhouse_secret(),
    )
    when_kafka_answers(
        settings.kafka_bootstrap,
        "creating the topics",
        lambda: ensure_topics(
            settings.kafka_bootstrap,
            [settings.events_topic, settings.invalid_topic],
            settings.topic_partitions,
        ),
    )
    product = load_config(settings.config_file)
    if product.health is not None:
        when_kafka_answers(
            settings.kafka_bootstrap,
            "creating the health topic",
            lambda: ensure_topics_with_config(
                settings.kafka_bootstrap, settings.health_topic, settings.topic_partitions, True
            ),
        )
    state = WorkerState()
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.watch(state, clickhouse)
    progress = ClickHouseWorkerProgress(clickhouse, settings.events_topic)
    completeness = Completeness(settings, clickhouse, progress, metrics)
    lag = ConsumerLagProbe(
        settings.kafka_bootstrap,
        settings.consumer_group,
        [settings.events_topic],
        metrics.set_consumer_lag,
        readers=[completeness],
    )
    config = _app_config(settings)
    # plan thresholds and tiers, on the metering fold's rows; state per partition held now
    alerts = add_alerts(settings, clickhouse, product, lambda: state.partitions)
    store, processors = build_pipeline(
        clickhouse, product, timedelta(days=settings.dedup_horizon_days), alerts
    )
    app = faust_app(config)
    activation = add_activation(app, settings, clickhouse, product, metrics.activations_emitted)
    steps = [activation.apply] if activation is not None else []
    build_worker(app, config, store, processors, state, progress, steps)
    api = create_read_api(
        clickhouse,
        product,
        settings.tenant_for_read_key(),
        # ready: partitions held, the broker answering, the activation tables restored
        lambda: state.assigned and lag.reachable and not app.in_recovery,
        lambda: completeness.latest,
    )
    metrics.serve(api)
    lag.start()
    watch = _start_health_watch(settings, clickhouse, product, state, app)
    server, thread = _serve(api, settings)
    settle()
    try:
        WorkerProcess(app, loglevel="INFO").execute_from_commandline()
    finally:
        server.should_exit = True
        lag.stop()
        if watch is not None:
            watch.stop()
        thread.join(timeout=10)


def _app_config(settings: Settings) -> AppConfig:
    """The faust app's part of the settings."""
    return AppConfig(
        app_id=settings.consumer_group,
        bootstrap=settings.kafka_bootstrap,
        events_topic=settings.events_topic,
        invalid_topic=settings.invalid_topic,
        batch_size=settings.sink_batch_size,
        batch_seconds=settings.sink_batch_seconds,
        datadir=str(settings.data_dir / "faust"),
        receipt_slack=timedelta(seconds=settings.receipt_slack_seconds),
    )


def _start_health_watch(
    settings: Settings,
    clickhouse: ClickHouse,
    product: ProductConfig,
    state: WorkerState,
    app: WorkerApp,
) -> HealthWatch | None:
    """The account health watch, started, when `[health]` is configured."""
    if product.health is None:
        return None
    watch = HealthWatch(
        clickhouse,
        product,
        product.health,
        settings.kafka_bootstrap,
        settings.health_topic,
        # one worker of the group watches: the one holding partition 0 of `events`
        watching=lambda: 0 in state.partitions and not app.in_recovery,
    )
    watch.start()
    return watch


def _serve(api: FastAPI, settings: Settings) -> tuple[uvicorn.Server, threading.Thread]:
    """The read API answering from a thread of its own."""
    server = uvicorn.Server(
        uvicorn.Config(api, host=settings.worker_host, port=settings.worker_port, log_level="info")
    )
    thread = threading.Thread(target=server.run, name="read-api", daemon=True)
    thread.start()
    return server, thread
