"""The collector's and the worker's Prometheus metrics, each on a fresh registry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from ingest.collector import create_collector
from ingest.metrics import CollectorMetrics
from ingest.sink import InMemoryEventSink
from processors.model import Delivery, RawMessage, Rejected
from processors.storage.clickhouse import ClickHouse
from processors.storage.events import InMemoryEventStore
from processors.worker.app import WorkerState
from processors.worker.batch import BatchResult, run_batch
from processors.worker.lag import lag_of
from processors.worker.metrics import WorkerMetrics, observe_many
from schemas import EnrichedEvent
from tests.harness import basic

KEYS = {"wk_acme": "acme", "wk_beta": "beta"}
C = "usage_stream_collector"
W = "usage_stream_worker"


def event(i: int = 1, **fields: object) -> dict[str, object]:
    return {"type": "track", "messageId": f"m-{i}", "userId": "u-1", "groupId": "a-1",
            "event": "api_call", **fields}  # fmt: skip


class FailingSink(InMemoryEventSink):
    """A sink with a bug: what an unexpected exception does to the counts."""

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug, not a Kafka failure")


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def total(registry: CollectorRegistry, name: str) -> float:
    """A counter summed over all its label values."""
    return sum(
        s.value for f in registry.collect() for s in f.samples if s.name == name
    )  # fmt: skip


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def collector(
    registry: CollectorRegistry, sink: InMemoryEventSink | None = None, tenants: Sequence[str] = ()
) -> TestClient:
    metrics = CollectorMetrics(registry, tenants or KEYS.values())
    app = create_collector(sink or InMemoryEventSink(), KEYS, 64 * 1024, metrics=metrics)
    return TestClient(app, raise_server_exceptions=False)


def test_accepted_events_are_counted_per_tenant_with_request_and_produce_timings(
    registry: CollectorRegistry,
) -> None:
    client = collector(registry)
    response = client.post(
        "/v1/batch", json={"batch": [event(1), event(2)]}, headers=basic("wk_acme")
    )
    assert response.status_code == 200, response.text
    assert value(registry, f"{C}_events_received_total", tenant="acme") == 2
    assert value(registry, f"{C}_events_accepted_total", tenant="acme") == 2
    assert value(registry, f"{C}_events_accepted_total", tenant="beta") == 0
    assert value(registry, f"{C}_requests_total", endpoint="/v1/batch", code="200") == 1
    assert value(registry, f"{C}_request_duration_seconds_count", endpoint="/v1/batch") == 1
    assert value(registry, f"{C}_request_size_bytes_count", endpoint="/v1/batch") == 1
    assert value(registry, f"{C}_request_size_bytes_sum", endpoint="/v1/batch") == len(
        response.request.content
    )
    assert value(registry, f"{C}_kafka_produce_duration_seconds_count") == 1
    assert value(registry, f"{C}_kafka_produce_errors_total") == 0


def test_kafka_refusing_counts_a_produce_error_and_rejects_every_event(
    registry: CollectorRegistry,
) -> None:
    sink = InMemoryEventSink()
    sink.down = True
    client = collector(registry, sink)
    response = client.post(
        "/v1/batch", json={"batch": [event(1), event(2), event(3)]}, headers=basic("wk_acme")
    )
    assert response.status_code == 503
    assert value(registry, f"{C}_kafka_produce_errors_total") == 1
    assert value(registry, f"{C}_events_rejected_total", reason="sink_unavailable") == 3
    assert value(registry, f"{C}_events_accepted_total", tenant="acme") == 0
    assert value(registry, f"{C}_requests_total", endpoint="/v1/batch", code="503") == 1


def test_received_is_always_accepted_plus_rejected(registry: CollectorRegistry) -> None:
    client = collector(registry)
    client.post("/v1/batch", json={"batch": [event(1), event(2)]}, headers=basic("wk_acme"))
    client.post("/v1/batch", json={"batch": [{"type": "track"}]}, headers=basic("wk_acme"))
    client.post(
        "/v1/batch", json={"batch": [event(3), {"type": "track"}]}, headers=basic("wk_beta")
    )
    client.post("/v1/batch", json={"batch": [event(4)], "writeKey": "wk_nope"})
    client.post("/v1/track", json=event(5), headers=basic("wk_beta"))
    received = total(registry, f"{C}_events_received_total")
    accepted = total(registry, f"{C}_events_accepted_total")
    rejected = total(registry, f"{C}_events_rejected_total")
    assert received == 7
    assert accepted + rejected == received
    assert rejected >= 3  # two events break the contract, one has an unknown key
    assert value(registry, f"{C}_events_received_total", tenant="unknown") == 1
    assert value(registry, f"{C}_events_rejected_total", reason="bad_key") == 1


def test_an_unexpected_error_still_settles_the_events_as_rejected(
    registry: CollectorRegistry,
) -> None:
    client = collector(registry, FailingSink())
    response = client.post("/v1/batch", json={"batch": [event(1)]}, headers=basic("wk_acme"))
    assert response.status_code == 500
    assert value(registry, f"{C}_events_rejected_total", reason="internal_error") == 1
    assert value(registry, f"{C}_requests_total", endpoint="/v1/batch", code="500") == 1
    assert value(registry, f"{C}_kafka_produce_errors_total") == 1


def test_label_values_stay_bounded(registry: CollectorRegistry) -> None:
    """Tenants not named to the metrics become `other`; unknown paths become `other`."""
    client = collector(registry, tenants=["acme"])
    client.post("/v1/batch", json={"batch": [event(1)]}, headers=basic("wk_beta"))
    for i in range(5):
        client.get(f"/random-{i}")
    assert value(registry, f"{C}_events_accepted_total", tenant="other") == 1
    assert value(registry, f"{C}_requests_total", endpoint="other", code="404") == 5
    tenants = {
        s.labels["tenant"]
        for f in registry.collect()
        for s in f.samples
        if "tenant" in s.labels
    }  # fmt: skip
    assert tenants == {"acme", "unknown", "other"}


def test_metrics_endpoint_serves_the_text_format(registry: CollectorRegistry) -> None:
    client = collector(registry)
    client.post("/v1/batch", json={"batch": [event(1)]}, headers=basic("wk_acme"))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    names = {f.name for f in text_string_to_metric_families(response.text)}
    assert {f"{C}_events_accepted", f"{C}_request_duration_seconds"} <= names
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def stored_event(i: int, received_at: datetime) -> EnrichedEvent:
    return EnrichedEvent(
        tenant="acme", type="track", message_id=f"m-{i}", event="api_call", account="a-1",
        timestamp=received_at, received_at=received_at,
    )  # fmt: skip


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


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[Delivery] = []

    def write(self, originals: Sequence[Delivery]) -> None:
        self.seen.extend(originals)


def test_run_batch_times_every_processor_and_reports_when_originals_were_received() -> None:
    now = datetime.now(UTC)
    events = [stored_event(i, now - timedelta(seconds=i)) for i in range(3)]
    messages = [RawMessage(0, i, b"k", e.to_kafka()) for i, e in enumerate(events)]
    messages.append(RawMessage(0, 3, b"k", events[0].to_kafka()))  # a duplicate
    messages.append(RawMessage(0, 4, b"k", b"not json"))
    result = run_batch(messages, InMemoryEventStore(), [Recorder()])
    assert set(result.processor_seconds) == {"raw", "recorder"}
    assert all(s >= 0 for s in result.processor_seconds.values())
    assert result.received_at == [e.received_at for e in events]
    assert (result.stored, result.duplicates, len(result.rejected)) == (3, 1, 1)


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


def test_lag_is_end_minus_commit_or_minus_earliest_when_never_committed() -> None:
    end = {("t", 0): 100, ("t", 1): 50, ("t", 2): 7}
    assert lag_of(end, {("t", 0): 90, ("t", 2): 9}, {("t", 1): 20}) == {
        ("t", 0): 10,
        ("t", 1): 30,
        ("t", 2): 0,  # a commit past the end (a truncated log) is no lag, not a negative one
    }


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


@pytest.mark.parametrize("build", [CollectorMetrics, WorkerMetrics])
def test_names_follow_the_conventions(build: Any) -> None:
    """usage_stream_ prefix, counters end in _total, times in seconds and sizes in bytes."""
    registry = CollectorRegistry()
    build(registry)
    text = generate_latest(registry).decode()
    ours = [f for f in text_string_to_metric_families(text) if f.name.startswith("usage_stream_")]
    assert len(ours) >= 8
    for family in ours:
        assert "millisecond" not in family.name and "_ms" not in family.name, family.name
        if family.type == "counter":
            assert f"# TYPE {family.name}_total counter" in text, family.name
        elif family.type == "histogram":
            assert family.name.endswith(("_seconds", "_bytes")), family.name
        else:
            assert family.type == "gauge", family.name
            assert family.name.endswith(("_messages", "_seconds")), family.name
