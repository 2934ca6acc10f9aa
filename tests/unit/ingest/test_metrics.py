"""The collector's Prometheus metrics (ingest.metrics), on a fresh registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from ingest.collector import create_collector
from ingest.metrics import CollectorMetrics
from ingest.sink import InMemoryEventSink
from tests.harness import basic
from tests.metrics import total, value

KEYS = {"wk_acme": "acme", "wk_beta": "beta"}
C = "usage_stream_collector"


def event(i: int = 1, **fields: object) -> dict[str, object]:
    return {"type": "track", "messageId": f"m-{i}", "userId": "u-1", "groupId": "a-1",
            "event": "api_call", **fields}  # fmt: skip


class FailingSink(InMemoryEventSink):
    """A sink with a bug: what an unexpected exception does to the counts."""

    async def publish(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug, not a Kafka failure")


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
