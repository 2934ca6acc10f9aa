"""The worker's Prometheus metrics, every one built here on one injected registry."""

from __future__ import annotations

import bisect
import collections
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from processors.worker.batch import RAW_STORE, BatchResult

if TYPE_CHECKING:  # the faust app module is heavy and not needed to build metrics
    from processors.storage.clickhouse import ClickHouse
    from processors.worker.app import WorkerState

# Batch, processor and insert times: a few ms on an idle engine, up to the 30 s retry backoff.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# End-to-end freshness around the 30 s p95 target, with room to see how far past it.
FRESHNESS_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
PREFIX = "usage_stream_worker"


class WorkerMetrics:
    """Everything a worker counts. Wire it with `watch(state, clickhouse)`; serve it with
    `serve(app)`; the consumer-lag probe calls `set_consumer_lag`, and after each of its
    readings the worker calls `set_complete_through`.

    Processors get this object (or its bound `activations_emitted`) to count what they emit:
    the activation processor calls `metrics.activations_emitted(rule, n)` once its
    activations are held by Kafka and ClickHouse. `rule` is the rule's configured name; label
    values must come from configuration, never from account or user ids.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        # `_created` gauges would double the series and no dashboard or alert reads them.
        disable_created_metrics()
        self.registry = registry
        self._count_batches(registry)
        self._count_inserts(registry)
        self.activations = Counter(
            f"{PREFIX}_activations_emitted",
            "Activations emitted, by the activation rule's configured name.",
            ["rule"],
            registry=registry,
        )
        self.consumer_lag = Gauge(
            f"{PREFIX}_consumer_lag_messages",
            "The consumer group's lag: log end offset minus committed offset, per partition.",
            ["topic", "partition"],
            registry=registry,
        )
        self._lag_labels: set[tuple[str, str]] = set()
        # Not under the worker's prefix: it says how complete the stored numbers are, which is
        # what readers of the data (and their alerts) ask, whichever process reports it.
        self.complete_through = Gauge(
            "usage_stream_worker_complete_through_seconds",
            "Receipt time (the collector's receivedAt, unix seconds) before which every event of"
            " the topic is written by every processor; absent while unknown.",
            ["topic"],
            registry=registry,
        )
        ProcessCollector(registry=registry)
        # Series exist at zero from the start, so rate() and increase() see the first events.
        for counter in (self.batches, self.batch_failures, self.duplicates, self.dead_letters):
            counter.inc(0)
        self.processed.labels(RAW_STORE)

    def _count_batches(self, registry: CollectorRegistry) -> None:
        """The batches, what each processor wrote of them, and how fresh their events were."""
        self.batches = Counter(
            f"{PREFIX}_batches", "Batches written everywhere.", registry=registry
        )
        self.batch_seconds = Histogram(
            f"{PREFIX}_batch_duration_seconds",
            "Time to write one batch everywhere, retries included.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_failures = Counter(
            f"{PREFIX}_batch_failures",
            "Attempts to write a batch that failed and were retried.",
            registry=registry,
        )
        self.processed = Counter(
            f"{PREFIX}_events_processed",
            f"Original events written by each processor ({RAW_STORE!r} is the raw event store).",
            ["processor"],
            registry=registry,
        )
        self.processor_seconds = Histogram(
            f"{PREFIX}_processor_duration_seconds",
            "Time each processor took to write one batch.",
            ["processor"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.duplicates = Counter(
            f"{PREFIX}_duplicates",
            "Copies of an already stored (tenant, messageId) that were dropped: dedup hits.",
            registry=registry,
        )
        self.dead_letters = Counter(
            f"{PREFIX}_dead_letters",
            "Messages that are not events, parked on the dead-letter topic.",
            registry=registry,
        )
        self.freshness = Histogram(
            f"{PREFIX}_freshness_seconds",
            "From the collector's receivedAt to the event being stored in ClickHouse.",
            buckets=FRESHNESS_BUCKETS,
            registry=registry,
        )

    def _count_inserts(self, registry: CollectorRegistry) -> None:
        """The ClickHouse client's insert statements, by table."""
        self.inserted_rows = Counter(
            f"{PREFIX}_clickhouse_inserted_rows",
            "Rows inserted into ClickHouse.",
            ["table"],
            registry=registry,
        )
        self.inserts = Counter(
            f"{PREFIX}_clickhouse_inserts",
            "Insert statements (one per batch and table) that succeeded.",
            ["table"],
            registry=registry,
        )
        self.insert_seconds = Histogram(
            f"{PREFIX}_clickhouse_insert_duration_seconds",
            "Time of one insert statement.",
            ["table"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.insert_failures = Counter(
            f"{PREFIX}_clickhouse_insert_failures",
            "Insert statements that failed (the batch is retried).",
            ["table"],
            registry=registry,
        )

    def watch(self, state: WorkerState, clickhouse: ClickHouse | None = None) -> None:
        """Hooks onto the worker's batch outcomes and the ClickHouse client's inserts."""
        state.on_batch.append(self.batch_written)
        state.on_failure.append(self.batch_failed)
        if clickhouse is not None:
            clickhouse.on_insert.append(self.clickhouse_insert)

    def batch_written(self, result: BatchResult, seconds: float) -> None:
        self.batches.inc()
        self.batch_seconds.observe(seconds)
        self.duplicates.inc(result.duplicates)
        self.dead_letters.inc(len(result.rejected))
        for processor, took in result.processor_seconds.items():
            self.processed.labels(processor).inc(result.stored)
            self.processor_seconds.labels(processor).observe(took)
        self.observe_freshness(result.received_at)

    def observe_freshness(self, received_at: Iterable[datetime]) -> None:
        """Each event's age, observed once per distinct receipt time: a request's events share
        theirs, and one `observe` per event cost ~1 µs of the worker's event loop."""
        now = datetime.now(UTC)
        for moment, events in collections.Counter(received_at).items():
            # Another host's clock may run ahead of ours; a negative age is zero, not an error.
            observe_many(self.freshness, max(0.0, (now - moment).total_seconds()), events)

    def batch_failed(self, exc: Exception) -> None:
        self.batch_failures.inc()

    def clickhouse_insert(self, table: str, rows: int, seconds: float, failed: bool) -> None:
        if failed:
            self.insert_failures.labels(table).inc()
            return
        self.inserts.labels(table).inc()
        self.inserted_rows.labels(table).inc(rows)
        self.insert_seconds.labels(table).observe(seconds)

    def activations_emitted(self, rule: str, count: int = 1) -> None:
        """Call once the activations are held (Kafka acked, ClickHouse written)."""
        self.activations.labels(rule).inc(count)

    def set_consumer_lag(self, lag: Mapping[tuple[str, int], int] | None) -> None:
        """The probe's latest reading; None when the broker could not be asked, which removes
        the series rather than leave a stale lag that looks healthy."""
        readings = {(topic, str(partition)): n for (topic, partition), n in (lag or {}).items()}
        for gone in self._lag_labels - readings.keys():
            self.consumer_lag.remove(*gone)
        for labels, messages in readings.items():
            self.consumer_lag.labels(*labels).set(messages)
        self._lag_labels = set(readings)

    def set_complete_through(self, topic: str, through: datetime | None) -> None:
        """The latest `complete_through` read from ClickHouse. None (a partition has no time
        yet) removes the series: nothing may look complete that is not known to be."""
        if through is None:
            self.complete_through.remove(topic)  # nothing to do when it is absent already
        else:
            self.complete_through.labels(topic).set(through.timestamp())

    def serve(self, app: FastAPI) -> None:
        """Answers GET /metrics on `app` from this registry."""

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def observe_many(histogram: Histogram, amount: float, count: int) -> None:
    """`histogram.observe(amount)` done `count` times, in one step. prometheus_client's
    Histogram has no weighted observe; this adds to what `observe` adds to (the sum, and the
    first bucket whose bound holds `amount`). tests/unit/processors/worker/test_metrics.py
    fails if those change."""
    histogram._sum.inc(amount * count)
    histogram._buckets[bisect.bisect_left(histogram._upper_bounds, amount)].inc(count)
