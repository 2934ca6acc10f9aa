"""The sender without Kafka or ClickHouse: which records become deliveries, and lanes that keep
a hung endpoint from holding up another."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from processors.webhooks.lanes import Lane
from processors.webhooks.metrics import WebhookMetrics
from processors.webhooks.model import (
    Attempt,
    Delivery,
    DeliveryStatus,
    InvalidRecord,
    Outcome,
    endpoints,
    parse_alert,
)
from processors.webhooks.sender import Sender
from schemas.webhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"s" * 24).decode()


def webhook(**fields: Any) -> Webhook:
    return Webhook.model_validate(
        {"tenant": "acme", "url": "http://127.0.0.1:1/in", "secret": SECRET, **fields}
    )


def alert(record_id: str, tenant: str = "acme", kind: str = "fired") -> bytes:
    return json.dumps(
        {"type": "usage_alert", "id": record_id, "kind": kind, "tenant": tenant,
         "account": "acct-1", "meter": "api_calls", "period": "2026-12", "quantity": "812"}
    ).encode()  # fmt: skip


class MemoryLog:
    """The delivery log's methods the sender and lanes call, in memory."""

    def __init__(self, known: Iterable[tuple[str, str]] = ()) -> None:
        self.rows: list[tuple[Delivery, Attempt]] = []
        self._known = set(known)
        self.lock = threading.Lock()

    def write(self, rows: Iterable[tuple[Delivery, Attempt]]) -> None:
        with self.lock:
            self.rows += list(rows)

    def known(self, tenants: Any, ids: Any) -> set[tuple[str, str]]:
        return set(self._known)

    def statuses(self, endpoint: str) -> dict[str, DeliveryStatus]:
        with self.lock:
            return {d.record_id: a.status for d, a in self.rows if d.endpoint == endpoint}


def sender(hooks: list[Webhook], log: MemoryLog, registry: CollectorRegistry) -> Sender:
    return Sender(
        "127.0.0.1:1", "usage_alerts", "g", endpoints(hooks), log,  # type: ignore[arg-type]
        WebhookMetrics(registry), 0.01, 0.05,
    )  # fmt: skip


def test_a_record_becomes_one_delivery_per_matching_endpoint_once() -> None:
    registry = CollectorRegistry()
    log = MemoryLog(known={("0", "seen-before")})
    hooks = [webhook(), webhook(name="resolves", types=["resolved"]), webhook(tenant="beta")]
    records = [
        (0, SimpleNamespace(offset=0, value=alert("r-1"))),
        (0, SimpleNamespace(offset=1, value=alert("r-1"))),  # the worker sent it twice
        (1, SimpleNamespace(offset=0, value=alert("r-2", kind="resolved"))),
        (1, SimpleNamespace(offset=1, value=alert("r-3", tenant="gamma"))),
        (2, SimpleNamespace(offset=0, value=alert("seen-before"))),
        (2, SimpleNamespace(offset=1, value=b"not json")),
        (2, SimpleNamespace(offset=2, value=None)),
    ]
    found = sender(hooks, log, registry).deliveries_of(records)
    assert [(d.endpoint, d.record_id, d.partition, d.offset) for d in found] == [
        ("0", "r-1", 0, 0), ("0", "r-2", 1, 0), ("resolves", "r-2", 1, 0),
    ]  # fmt: skip
    assert found[0].payload == alert("r-1") and found[0].attempts == 0
    name = "usage_stream_webhooks_records_total"
    samples = [s for f in registry.collect() for s in f.samples if s.name == name]
    counted = {s.labels["outcome"]: s.value for s in samples}
    assert counted == {"queued": 2, "seen": 2, "unmatched": 1, "invalid": 2}


@pytest.mark.parametrize(
    ("value", "why"),
    [(None, "tombstone"), (b"\xff", "not JSON"), (b"[1]", "type 'usage_alert'"),
     (b'{"type": "usage_alert", "id": "", "tenant": "a", "kind": "fired"}', "no id")],
)  # fmt: skip
def test_what_is_not_a_usage_alert_says_why(value: bytes | None, why: str) -> None:
    with pytest.raises(InvalidRecord, match=why):
        parse_alert(value)


def test_a_hung_endpoint_does_not_hold_up_another() -> None:
    registry = CollectorRegistry()
    metrics = WebhookMetrics(registry)
    log = MemoryLog()
    release = threading.Event()
    sent: dict[str, list[str]] = {"dead": [], "healthy": []}

    def send(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Outcome:
        name = "dead" if "dead" in url else "healthy"
        sent[name].append(headers["webhook-id"])
        if name == "dead":
            release.wait(10)
            return Outcome(0, "no answer", 10.0)
        return Outcome(200, "", 0.001)

    dead, healthy = endpoints(
        [webhook(name="dead", url="http://dead.example/in"), webhook(name="healthy")]
    )
    lanes = [
        Lane(e, log, metrics, lambda p: True, 0.01, 0.05, send)  # type: ignore[arg-type]
        for e in (dead, healthy)
    ]
    now = datetime.now(UTC)
    for lane in lanes:
        lane.start()
        for i in range(5):
            lane.add(
                Delivery(lane.endpoint.name, "acme", f"r-{i}", "fired", "a", b"{}", now, now,
                         "usage_alerts", 0, i)
            )  # fmt: skip
    try:
        deadline = time.monotonic() + 5
        while len(log.statuses("healthy")) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert log.statuses("healthy") == {f"r-{i}": DeliveryStatus.DELIVERED for i in range(5)}
        assert sent["dead"] == ["r-0"]  # still stuck in its first try
        assert len(lanes[0]) == 5 and len(lanes[1]) == 0
        assert lanes[0].oldest_age() > 0 and lanes[1].oldest_age() == 0
        delivered = {"endpoint": "healthy", "outcome": "delivered"}
        name = "usage_stream_webhooks_deliveries_total"
        assert registry.get_sample_value(name, delivered) == 5
    finally:
        for lane in lanes:
            lane.stop()
        release.set()
        for lane in lanes:
            lane.join(5)


def test_a_lane_holds_a_delivery_once_and_lets_revoked_ones_go() -> None:
    registry = CollectorRegistry()
    (endpoint,) = endpoints([webhook()])
    lane = Lane(endpoint, MemoryLog(), WebhookMetrics(registry), lambda p: True, 0.01, 0.05)  # type: ignore[arg-type]
    later = datetime(2100, 1, 1, tzinfo=UTC)  # not due: the lane (not started) just holds them
    first = Delivery("0", "acme", "r-1", "fired", "a", b"{}", later, later, "t", 0, 0)
    assert lane.add(first) and not lane.add(first)
    assert lane.add(Delivery("0", "acme", "r-2", "fired", "a", b"{}", later, later, "t", 1, 0))
    lane.drop({0})
    assert len(lane) == 1 and lane.add(first)
