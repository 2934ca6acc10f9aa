"""The collector process: the HTTP app on its Kafka sink, with its limits and metrics."""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
from datetime import timedelta

import uvicorn
from fastapi import FastAPI
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from ingest.collector import create_collector
from ingest.limits import Limits
from ingest.metrics import MULTIPROCESS_DIR, CollectorMetrics
from ingest.ratelimit import RateLimiter
from ingest.sink import KafkaEventSink
from runtime.heap import settle
from runtime.topics import ensure_topics
from schemas.settings import Settings

log = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def run_collector(settings: Settings) -> None:
    """One process, or a group of them on one port (`collector_processes`, default one per
    core): uvicorn's workers share the listening socket, its supervisor restarts one that dies,
    and /metrics of any of them answers for the whole group (prometheus_client's multiprocess
    mode, in a directory of the group's own)."""
    # Rejected events go to the invalid topic; create it (and the events topic) if Kafka is up,
    # in the background, since the collector also starts, not ready, while Kafka is down.
    threading.Thread(target=_ensure_topics_quietly, args=(settings,), daemon=True).start()
    if not settings.write_keys:  # said once, by the process that starts the others
        log.warning(
            "no write keys: every request will be answered 401. Set USAGE_STREAM_WRITE_KEYS,"
            ' e.g. \'{"acme": "wk_..."}\''
        )
    processes = settings.collector_processes or os.cpu_count() or 1
    # no access log: a line per request was ~2% of the collector's CPU at full load, and
    # /metrics counts requests by path and status; errors are still logged
    host, port = settings.collector_host, settings.collector_port
    if processes == 1:
        app = collector_app(settings)
        settle()
        uvicorn.run(app, host=host, port=port, access_log=False)
        return
    metrics_dir = tempfile.mkdtemp(prefix="usage-stream-collector-metrics-")
    os.environ[MULTIPROCESS_DIR] = metrics_dir  # the workers' environment, before they start
    try:
        uvicorn.run(
            "ingest.process:collector_in_group",
            factory=True,
            workers=processes,
            host=host,
            port=port,
            access_log=False,
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def collector_in_group() -> FastAPI:
    """One process of a group (uvicorn calls this in each): it dies with the process that
    started it, so a killed collector leaves nothing holding its port."""
    _die_with_parent()
    app = collector_app(Settings())
    settle()
    return app


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def collector_app(settings: Settings) -> FastAPI:
    sink = KafkaEventSink(
        settings.kafka_bootstrap,
        settings.events_topic,
        settings.produce_timeout_seconds,
        invalid_topic=settings.invalid_topic,
        compression=settings.kafka_compression,
        linger_ms=settings.kafka_linger_ms,
    )
    metrics = CollectorMetrics(
        CollectorRegistry(), settings.write_keys, in_group=MULTIPROCESS_DIR in os.environ
    )
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
    return create_collector(
        sink, settings.tenant_for_write_key(), limits, metrics=metrics, rate_limiter=limiter
    )


def _ensure_topics_quietly(settings: Settings) -> None:
    try:
        ensure_topics(
            settings.kafka_bootstrap,
            [settings.events_topic, settings.invalid_topic],
            settings.topic_partitions,
        )
    except KafkaError as exc:
        log.warning("could not check the topics (Kafka down?): %r", exc)
