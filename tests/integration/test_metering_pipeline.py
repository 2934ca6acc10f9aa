"""Metered quantities end to end: collector → Kafka → worker → ClickHouse → usage API."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import Corner
from tests.harness import Service, basic, bearer, http, wait_until

pytestmark = pytest.mark.integration


def api_call(rng: random.Random, when: datetime, account: str = "acct-1") -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": str(uuid.uuid4()),
        "userId": f"user-{rng.randint(1, 25)}",
        "groupId": account,
        "event": "api_call",
        "timestamp": when.isoformat(),
        "properties": {
            "endpoint": rng.choice(["/v1/search", "/v1/reports"]),
            "duration_ms": rng.choice([rng.randint(1, 900), round(rng.uniform(0, 50), 3)]),
            "status": rng.choice([200, 200, 201, 429, 500]),
        },
    }


def post(collector: Service, key: str, events: list[dict[str, Any]]) -> None:
    body = {"batch": events, "sentAt": datetime.now(UTC).isoformat()}
    status, answer = http("POST", f"{collector.url}/v1/batch", body, basic(key))
    assert status == 200, answer


def usage(worker: Service, key: str, meter: str, **params: Any) -> dict[str, Any]:
    query = urlencode(params, doseq=True)
    status, body = http("GET", f"{worker.url}/v1/meters/{meter}/usage?{query}", None, bearer(key))
    assert status == 200, body
    return dict(body)


def quantity(worker: Service, key: str, meter: str, start: datetime, to: datetime) -> Any:
    answer = usage(worker, key, meter, **{"from": start.isoformat(), "to": to.isoformat()},
                   by_customer="false")  # fmt: skip
    return Decimal(answer["data"][0]["quantity"]) if answer["data"] else Decimal(0)


def expected_calls(events: list[dict[str, Any]]) -> int:
    return sum(e["event"] == "api_call" and e["properties"]["status"] in (200, 201) for e in events)


def test_quantities_are_exact_deduplicated_and_per_tenant(
    corner: Corner, worker: Service, collector: Service
) -> None:
    rng = random.Random(11)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, to = now - timedelta(hours=2), now + timedelta(minutes=1)
    acme = [api_call(rng, start + timedelta(seconds=rng.uniform(0, 7000))) for _ in range(400)]
    acme += [
        {"type": "track", "messageId": str(uuid.uuid4()), "userId": "user-1", "groupId": "acct-2",
         "event": "storage_reported", "properties": {"gb": gb},
         "timestamp": (start + timedelta(minutes=m)).isoformat()}
        for m, gb in ((10, 3.5), (90, 7.25), (50, 9))
    ]  # fmt: skip
    other_key = f"wk_other_{corner.write_key[3:]}"
    other = [api_call(rng, start + timedelta(minutes=5), account="acct-1") for _ in range(37)]
    for i in range(0, len(acme), 100):
        post(collector, corner.write_key, acme[i : i + 100])
    post(collector, corner.write_key, acme[100:200])  # a whole batch sent again
    post(collector, corner.write_key, acme[5:6])  # one event sent again
    post(collector, other_key, other)

    calls = [e for e in acme if e["event"] == "api_call"]
    expected = Decimal(expected_calls(acme))
    wait_until(lambda: quantity(worker, corner.read_key, "api_calls", start, to) == expected, 30)
    durations = [Decimal(str(e["properties"]["duration_ms"])) for e in calls]
    users = {e["userId"] for e in acme}
    wait_until(lambda: quantity(worker, corner.read_key, "active_users", start, to) == len(users))
    # calls not counted (status 429, 500) may be written a batch after the last one counted
    wait_until(
        lambda: quantity(worker, corner.read_key, "api_compute_ms", start, to) == sum(durations)
    )
    assert quantity(worker, corner.read_key, "slowest_api_call_ms", start, to) == max(durations)
    # the reports came in the last request: they may be written a batch after the calls
    wait_until(
        lambda: quantity(worker, corner.read_key, "storage_gb", start, to) == Decimal("7.25")
    )

    # the other tenant's key sees its own quantities only, and none of acme's events
    other_read = f"rk_other_{corner.read_key[3:]}"
    wait_until(
        lambda: quantity(worker, other_read, "api_calls", start, to) == expected_calls(other)
    )
    status, rows = http("GET", f"{worker.url}/v1/events?message_id={acme[0]['messageId']}",
                        None, bearer(other_read))  # fmt: skip
    assert (status, rows) == (200, [])
    assert http("GET", f"{worker.url}/v1/meters", None, bearer(corner.write_key))[0] == 401

    # per customer and group, and day windows in a zone with a half-hour offset
    answer = usage(worker, corner.read_key, "api_calls", group_by="endpoint",
                   **{"from": start.isoformat(), "to": to.isoformat()})  # fmt: skip
    by_endpoint: dict[str, int] = {}
    for e in calls:
        if e["properties"]["status"] in (200, 201):
            name = e["properties"]["endpoint"]
            by_endpoint[name] = by_endpoint.get(name, 0) + 1
    assert {r["groups"]["endpoint"]: int(r["quantity"]) for r in answer["data"]} == by_endpoint
    window = {"from": start.isoformat(), "to": to.isoformat()}
    days = usage(worker, corner.read_key, "api_calls", window="day", tz="Asia/Kolkata",
                 by_customer="false", **window)  # fmt: skip
    assert sum(int(r["quantity"]) for r in days["data"]) == expected
    for row in days["data"][1:]:
        assert datetime.fromisoformat(row["window_start"]).strftime("%H:%M") == "18:30"


def test_events_for_a_final_period_are_adjustments(
    corner: Corner, worker: Service, collector: Service
) -> None:
    rng = random.Random(12)
    long_ago = (datetime.now(UTC) - timedelta(days=100)).replace(day=10)
    month_start = long_ago.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    month_end = (month_start + timedelta(days=32)).replace(day=1)
    late = [api_call(rng, long_ago + timedelta(minutes=i)) for i in range(30)]
    post(collector, corner.write_key, late)
    params = {"from": month_start.isoformat(), "to": month_end.isoformat(), "by_customer": "false"}

    def all_counted() -> dict[str, Any] | None:
        # the events may reach ClickHouse over several worker batches: wait for the last one
        answer = usage(worker, corner.read_key, "api_calls", **params)
        rows = answer["data"]
        return answer if rows and rows[0]["late_events"] == expected_calls(late) else None

    answer = wait_until(all_counted)
    [row] = answer["data"]
    assert answer["final"] and row["final"]
    assert row["quantity"] == "0"
    assert Decimal(row["adjusted_quantity"]) == expected_calls(late)
    assert row["late_events"] == expected_calls(late)


@pytest.mark.timeout(400)
def test_a_worker_killed_mid_stream_leaves_quantities_equal_to_the_raw_events(
    corner: Corner, collector: Service
) -> None:
    worker = corner.service("worker", USAGE_STREAM_SINK_BATCH_SIZE="40")
    worker.start()
    rng = random.Random(13)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, to = now - timedelta(hours=1), now + timedelta(minutes=1)
    events = [api_call(rng, start + timedelta(seconds=rng.uniform(0, 3500)),
                       account=f"acct-{rng.randint(1, 5)}") for _ in range(3000)]  # fmt: skip

    def send_all() -> None:
        for i in range(0, len(events), 50):
            post(collector, corner.write_key, events[i : i + 50])

    sender = threading.Thread(target=send_all)
    sender.start()
    try:
        for _ in range(2):  # twice, at whatever point each batch is in
            wait_until(lambda: quantity(worker, corner.read_key, "api_calls", start, to) > 0, 60)
            worker.kill()
            worker.start()
    finally:
        sender.join(120)
    expected = Decimal(expected_calls(events))
    wait_until(lambda: quantity(worker, corner.read_key, "api_calls", start, to) == expected, 90)
    total = sum(Decimal(str(e["properties"]["duration_ms"])) for e in events)
    wait_until(lambda: quantity(worker, corner.read_key, "api_compute_ms", start, to) == total)
    worker.stop()  # reconcile then reads every row the worker wrote
    assert_reconciled(corner, start, to)


@pytest.mark.timeout(300)
def test_a_worker_killed_inside_its_bulk_batches_counts_every_event_once(
    corner: Corner, collector: Service
) -> None:
    """A backlog read a whole fetch at a time, in batches of 2,000: each SIGKILL lands while a
    batch is being written (stored, metered, its offsets not yet committed)."""
    rng = random.Random(29)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, to = now - timedelta(hours=1), now + timedelta(minutes=1)
    events = [api_call(rng, start + timedelta(seconds=rng.uniform(0, 3500)),
                       account=f"acct-{rng.randint(1, 9)}") for _ in range(12_000)]  # fmt: skip
    for i in range(0, len(events), 500):
        post(collector, corner.write_key, events[i : i + 500])
    worker = corner.service("worker", USAGE_STREAM_SINK_BATCH_SIZE="2000")
    stored = 0
    for _ in range(3):
        worker.start()
        wait_until(lambda before=stored: events_stored(worker, corner.read_key) > before, 90)
        stored = events_stored(worker, corner.read_key)
        worker.kill()
    worker.start()
    expected = Decimal(expected_calls(events))
    wait_until(lambda: quantity(worker, corner.read_key, "api_calls", start, to) == expected, 120)
    assert events_stored(worker, corner.read_key) == len(events)
    worker.stop()
    assert_reconciled(corner, start, to)


def assert_reconciled(corner: Corner, start: datetime, to: datetime) -> None:
    """`usage-stream reconcile` finds the stored quantities equal to the raw events'."""
    result = subprocess.run(
        [sys.executable, "-m", "usage_stream.cli", "reconcile",
         "--from", start.isoformat(), "--to", to.isoformat()],
        env={**os.environ, **corner.env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "equal a recomputation" in result.stdout


def events_stored(worker: Service, key: str) -> int:
    status, body = http("GET", f"{worker.url}/v1/events/counts", None, bearer(key))
    assert status == 200, body
    return sum(int(row["events"]) for row in body)


@pytest.mark.timeout(300)
def test_events_committed_past_without_being_handed_over_are_stored_and_metered(
    corner: Corner, collector: Service
) -> None:
    """faust can commit an offset whose message the worker never saw (around a rebalance it
    skips and acks the old generation's messages); here the group's offset is moved past three
    events by hand, and the worker must read them from Kafka all the same."""
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    from schemas import EnrichedEvent

    bootstrap = corner.env["USAGE_STREAM_KAFKA_BOOTSTRAP"]
    topic = corner.env["USAGE_STREAM_EVENTS_TOPIC"]
    rng = random.Random(14)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, to = now - timedelta(hours=1), now + timedelta(minutes=1)
    calls = [{**api_call(rng, now - timedelta(minutes=5)), "properties": {"status": 200}}
             for _ in range(6)]  # fmt: skip
    opening, hidden, closing = calls[:2], calls[2:5], calls[5:]
    worker = corner.service("worker").start()
    try:
        post(collector, corner.write_key, opening)
        wait_until(lambda: quantity(worker, corner.read_key, "api_calls", start, to) == 2)
    finally:
        worker.stop()

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    sent = []
    for call in hidden:
        event = EnrichedEvent.model_validate(
            {**call, "tenant": corner.tenant, "account": call["groupId"], "receivedAt": now}
        )
        key = event.partition_key.encode()
        sent.append(producer.send(topic, key=key, value=event.to_kafka()).get(30))
    producer.close()
    [partition] = {s.partition for s in sent}  # one account: one partition
    group = corner.env["USAGE_STREAM_CONSUMER_GROUP"]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    consumer.commit(
        {TopicPartition(topic, partition): OffsetAndMetadata(sent[-1].offset + 1, "", -1)}
    )
    consumer.close()

    worker = corner.service("worker").start()
    try:
        post(collector, corner.write_key, closing)
        wait_until(lambda: quantity(worker, corner.read_key, "api_calls", start, to) == 6, 60)
        ids = [c["messageId"] for c in hidden]
        query = urlencode({"message_id": ids}, doseq=True)
        status, rows = http("GET", f"{worker.url}/v1/events?{query}", None, bearer(corner.read_key))
        assert status == 200 and sorted(r["message_id"] for r in rows) == sorted(ids)
    finally:
        worker.stop()
