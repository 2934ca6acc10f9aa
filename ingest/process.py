"""The collector process: the HTTP app on its Kafka sink, with its limits and metrics."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import uvicorn
from kafka.errors import KafkaError
from prometheus_client import CollectorRegistry

from ingest.collector import create_collector
from ingest.limits import Limits
from ingest.metrics import CollectorMetrics
from ingest.ratelimit import RateLimiter
from ingest.sink import KafkaEventSink
from ingest.topics import ensure_topics
from schemas.settings import Settings

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
    # no access log: a line per request was ~2% of the collector's CPU at full load, and
    # /metrics counts requests by path and status; errors are still logged
    uvicorn.run(
        app,
        host=settings.collector_host,
        port=settings.collector_port,
        log_level="info",
        access_log=False,
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
