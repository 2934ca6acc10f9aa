"""The webhook sender's Prometheus metrics, every one built here on one injected registry.

Endpoints are labelled by their configured name (or place in [[webhooks]]): a bounded set
from the configuration, never a URL (it may carry a token) nor a tenant's account.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
)

from processors.webhooks.model import DeliveryStatus, Outcome

PREFIX = "usage_stream_webhooks"
# From a local receiver's milliseconds to the longest timeout an endpoint may have (300 s)
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# What became of each record read from the alerts topic
RECORD_OUTCOMES = ("queued", "seen", "unmatched", "invalid")


class WebhookMetrics:
    """Everything the sender counts. Lanes call `attempted` after each try and register their
    backlog with `watch_lane`; the consumer calls `records` per record read."""

    def __init__(self, registry: CollectorRegistry) -> None:
        disable_created_metrics()
        self.registry = registry
        ProcessCollector(registry=registry)
        self.deliveries = Counter(
            f"{PREFIX}_deliveries",
            "Deliveries that ended, by endpoint and outcome: delivered (2xx), or failed (given"
            " up after the endpoint's retry_for; listed as failed, re-sendable).",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.attempt_failures = Counter(
            f"{PREFIX}_attempt_failures",
            "Attempts that did not get a 2xx (timeout, refused, any other status), by endpoint.",
            ["endpoint"],
            registry=registry,
        )
        self.attempt_seconds = Histogram(
            f"{PREFIX}_attempt_duration_seconds",
            "Time of one POST to an endpoint, until its answer or the timeout.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.oldest = Gauge(
            f"{PREFIX}_oldest_undelivered_age_seconds",
            "Age of the oldest delivery still pending, by endpoint; 0 when none is.",
            ["endpoint"],
            registry=registry,
        )
        self.read = Counter(
            f"{PREFIX}_records",
            "Records read from the alerts topic: queued for an endpoint, seen before (in the"
            " delivery log), for no endpoint, or not a usage alert.",
            ["outcome"],
            registry=registry,
        )
        for outcome in RECORD_OUTCOMES:
            self.read.labels(outcome)

    def watch_lane(self, endpoint: str, oldest_age: Callable[[], float]) -> None:
        """Make an endpoint's series exist from the start, its backlog read at each scrape."""
        self.oldest.labels(endpoint).set_function(oldest_age)
        for outcome in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED):
            self.deliveries.labels(endpoint, outcome.value)
        self.attempt_failures.labels(endpoint)

    def attempted(self, endpoint: str, outcome: Outcome, status: DeliveryStatus) -> None:
        self.attempt_seconds.labels(endpoint).observe(outcome.latency)
        if not outcome.ok:
            self.attempt_failures.labels(endpoint).inc()
        if status is not DeliveryStatus.PENDING:
            self.deliveries.labels(endpoint, status.value).inc()

    def records(self, outcome: str, count: int = 1) -> None:
        if count:
            self.read.labels(outcome).inc(count)
