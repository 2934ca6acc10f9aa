"""The sender's metrics: names by the conventions, endpoints as bounded labels."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from processors.webhooks.metrics import WebhookMetrics
from processors.webhooks.model import DeliveryStatus, Outcome

P = "usage_stream_webhooks"


def test_names_follow_the_conventions() -> None:
    registry = CollectorRegistry()
    WebhookMetrics(registry).watch_lane("ops", lambda: 0.0)
    text = generate_latest(registry).decode()
    ours = [f for f in text_string_to_metric_families(text) if f.name.startswith(P)]
    assert {f.name for f in ours} == {
        f"{P}_deliveries", f"{P}_attempt_failures", f"{P}_attempt_duration_seconds",
        f"{P}_oldest_undelivered_age_seconds", f"{P}_records",
    }  # fmt: skip
    for family in ours:
        if family.type == "counter":
            assert f"# TYPE {family.name}_total counter" in text, family.name
        else:
            assert family.name.endswith("_seconds"), family.name
    assert "process_cpu_seconds_total" in text


def test_attempts_and_outcomes_are_counted_per_endpoint() -> None:
    registry = CollectorRegistry()
    metrics = WebhookMetrics(registry)
    backlog = [42.0]
    metrics.watch_lane("ops", lambda: backlog[0])

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(f"{P}_{name}", labels)

    assert sample("deliveries_total", endpoint="ops", outcome="failed") == 0  # exists at once
    metrics.attempted("ops", Outcome(500, "HTTP 500", 0.2), DeliveryStatus.PENDING)
    metrics.attempted("ops", Outcome(0, "no answer", 10.0), DeliveryStatus.FAILED)
    metrics.attempted("ops", Outcome(204, "", 0.05), DeliveryStatus.DELIVERED)
    assert sample("attempt_failures_total", endpoint="ops") == 2
    assert sample("deliveries_total", endpoint="ops", outcome="failed") == 1
    assert sample("deliveries_total", endpoint="ops", outcome="delivered") == 1
    assert sample("attempt_duration_seconds_count", endpoint="ops") == 3
    assert sample("attempt_duration_seconds_bucket", endpoint="ops", le="0.25") == 2
    assert sample("oldest_undelivered_age_seconds", endpoint="ops") == 42.0
    backlog[0] = 0.0
    assert sample("oldest_undelivered_age_seconds", endpoint="ops") == 0.0
