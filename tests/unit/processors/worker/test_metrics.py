"""The worker's Prometheus metrics (processors.worker.metrics), on a fresh registry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from processors.model import RawMessage, Rejected
from processors.storage.clickhouse import ClickHouse
from processors.worker.app import WorkerState
from processors.worker.batch import BatchResult
from processors.worker.metrics import WorkerMetrics, observe_many
from tests.metrics import total, value

W = "usage_stream_worker"


def test_a_written_batch_counts_processors_duplicates_dead_letters_and_freshness(
    registry: CollectorRegistry,
) -> None:
    metrics = WorkerMetrics(registry)
    now = datetime.now(UTC)
    result = BatchResult(
        stored=2,
        duplicates=3,
        rejected=[Rejected(RawMessage(0, 9, None, b"x"), "not an event")],
        received_at=[now - timedelta(seconds=2), now - timedelta(seconds=45)],
        processor_seconds={"raw": 0.01, "metering": 0.02},
    )
    metrics.batch_written(result, 0.5)
    assert value(registry, f"{W}_batches_total") == 1
    assert value(registry, f"{W}_batch_duration_seconds_sum") == 0.5
    assert value(registry, f"{W}_duplicates_total") == 3
    assert value(registry, f"{W}_dead_letters_total") == 1
    assert value(registry, f"{W}_events_processed_total", processor="raw") == 2
    assert value(registry, f"{W}_events_processed_total", processor="metering") == 2
    assert value(registry, f"{W}_processor_duration_seconds_count", processor="metering") == 1
    assert value(registry, f"{W}_freshness_seconds_count") == 2
    assert value(registry, f"{W}_freshness_seconds_bucket", le="30.0") == 1
    assert value(registry, f"{W}_freshness_seconds_bucket", le="60.0") == 2
    assert 47 <= value(registry, f"{W}_freshness_seconds_sum") < 60


def test_a_clock_ahead_of_ours_is_fresh_not_negative(registry: CollectorRegistry) -> None:
    metrics = WorkerMetrics(registry)
    metrics.observe_freshness([datetime.now(UTC) + timedelta(seconds=5)])
    assert value(registry, f"{W}_freshness_seconds_sum") == 0
    assert value(registry, f"{W}_freshness_seconds_bucket", le="0.25") == 1


@pytest.mark.parametrize("amount", [0.0, 0.25, 0.3, 30.0, 59.9, 1e9])
def test_observing_an_amount_n_times_at_once_is_observing_it_n_times(amount: float) -> None:
    once, many = CollectorRegistry(), CollectorRegistry()
    buckets = (0.25, 30.0, 60.0)
    one_by_one = Histogram("age_seconds", "", buckets=buckets, registry=once)
    for _ in range(3):
        one_by_one.observe(amount)
    observe_many(Histogram("age_seconds", "", buckets=buckets, registry=many), amount, 3)
    assert generate_latest(many) == generate_latest(once)


class StubClient:
    def __init__(self) -> None:
        self.fail = False
        self.rows: list[Any] = []

    def insert(self, table: str, rows: list[Any], column_names: list[str]) -> None:
        if self.fail:
            raise ConnectionError("ClickHouse is down")
        self.rows.extend(rows)


def test_clickhouse_inserts_are_counted_by_table_and_failures_reraised(
    registry: CollectorRegistry,
) -> None:
    metrics = WorkerMetrics(registry)
    stub = StubClient()
    clickhouse = ClickHouse(stub)  # type: ignore[arg-type]
    metrics.watch(WorkerState(), clickhouse)
    clickhouse.insert("events", [[1], [2], [3]], ["a"])
    stub.fail = True
    with pytest.raises(ConnectionError):
        clickhouse.insert("events", [[4]], ["a"])
    assert value(registry, f"{W}_clickhouse_inserted_rows_total", table="events") == 3
    assert value(registry, f"{W}_clickhouse_inserts_total", table="events") == 1
    assert value(registry, f"{W}_clickhouse_insert_duration_seconds_count", table="events") == 1
    assert value(registry, f"{W}_clickhouse_insert_failures_total", table="events") == 1


def test_watch_hooks_onto_the_worker_state(registry: CollectorRegistry) -> None:
    metrics = WorkerMetrics(registry)
    state = WorkerState()
    metrics.watch(state)
    for hook in state.on_failure:
        hook(ConnectionError("down"))
    for batch_hook in state.on_batch:
        batch_hook(BatchResult(stored=1, duplicates=0, rejected=[]), 0.1)
    assert value(registry, f"{W}_batch_failures_total") == 1
    assert value(registry, f"{W}_batches_total") == 1


def test_consumer_lag_series_follow_the_latest_reading(registry: CollectorRegistry) -> None:
    metrics = WorkerMetrics(registry)
    metrics.set_consumer_lag({("events", 0): 5, ("events", 1): 0})
    assert value(registry, f"{W}_consumer_lag_messages", topic="events", partition="0") == 5
    metrics.set_consumer_lag({("events", 0): 3})
    assert registry.get_sample_value(
        f"{W}_consumer_lag_messages", {"topic": "events", "partition": "1"}
    ) is None  # fmt: skip
    metrics.set_consumer_lag(None)  # the broker did not answer: no stale numbers
    assert total(registry, f"{W}_consumer_lag_messages") == 0
    assert registry.get_sample_value(
        f"{W}_consumer_lag_messages", {"topic": "events", "partition": "0"}
    ) is None  # fmt: skip


def test_complete_through_is_a_unix_time_and_absent_while_unknown(
    registry: CollectorRegistry,
) -> None:
    metrics = WorkerMetrics(registry)
    name = "usage_stream_worker_complete_through_seconds"
    metrics.set_complete_through("events", None)  # unknown from the start: no series, no error
    assert registry.get_sample_value(name, {"topic": "events"}) is None
    metrics.set_complete_through("events", datetime(2026, 3, 1, 12, 0, 0, 500_000, tzinfo=UTC))
    assert value(registry, name, topic="events") == 1772366400.5
    metrics.set_complete_through("events", None)
    assert registry.get_sample_value(name, {"topic": "events"}) is None


def test_activations_are_counted_by_rule(registry: CollectorRegistry) -> None:
    metrics = WorkerMetrics(registry)
    metrics.activations_emitted("three_reports", 2)
    metrics.activations_emitted("three_reports")
    assert value(registry, f"{W}_activations_emitted_total", rule="three_reports") == 3


def test_worker_metrics_endpoint(registry: CollectorRegistry) -> None:
    metrics = WorkerMetrics(registry)
    app = FastAPI()
    metrics.serve(app)
    metrics.batches.inc()
    response = TestClient(app).get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families[f"{W}_batches"].samples[0].value == 1
