"""GB-hours, seat-days and health crossings end to end: collector → Kafka → worker → ClickHouse."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kafka import KafkaProducer

from processors.account_health.watch import read_sides
from runtime.topics import ensure_topics_with_config
from schemas.config import EXAMPLE_CONFIG
from tests.conftest import Corner
from tests.harness import Service, basic, http, wait_until
from tests.integration.test_metering_pipeline import post, usage
from tests.integration.topic_reader import read_topic
from usage_stream.broker import LocalBroker

pytestmark = pytest.mark.integration


def track(name: str, account: str, when: datetime, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track", "messageId": str(uuid.uuid4()), "userId": properties.pop("user", "u-1"),
        "groupId": account, "event": name, "timestamp": when.isoformat(),
        "properties": properties,
    }  # fmt: skip


def test_gb_hours_and_seat_days_through_kafka(
    corner: Corner, worker: Service, collector: Service
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # no sentAt: the times are taken as sent, not corrected by the milliseconds of transit
    body = {"batch": [
        track("storage_reported", "acct-9", now - timedelta(hours=1), gb=4),
        track("storage_reported", "acct-9", now - timedelta(hours=3), gb=10),
        track("seat_added", "acct-9", now - timedelta(days=2), user="ann"),
        track("seat_removed", "acct-9", now - timedelta(days=1), user="ann"),
        track("seat_added", "acct-9", now - timedelta(days=1), user="bob"),
    ]}  # fmt: skip
    assert http("POST", f"{collector.url}/v1/batch", body, basic(corner.write_key))[0] == 200

    def answer(meter: str, start: datetime) -> Any:
        found = usage(worker, corner.read_key, meter, **{"from": start.isoformat(),
                                                        "to": now.isoformat()})  # fmt: skip
        return found["data"][0]["quantity"] if found["data"] else None

    # 10 GB for 2 h, then 4 GB for the last hour
    assert wait_until(lambda: answer("storage_gb_hours", now - timedelta(hours=3)) == "24", 30)
    # ann's seat for the first day, bob's for the second
    assert wait_until(lambda: answer("seat_days", now - timedelta(days=2)) == "2", 30)


def fast_health(corner: Corner) -> None:
    """The example configuration, with crossings looked for twice a second."""
    text = EXAMPLE_CONFIG.read_text().replace("check_seconds = 60 ", "check_seconds = 0.5")
    assert "check_seconds = 0.5" in text
    path = corner.home / "usage-stream.toml"
    path.write_text(text)
    corner.env["USAGE_STREAM_CONFIG_FILE"] = str(path)


def crossings(corner: Corner, account: str) -> list[dict[str, Any]]:
    records = read_topic(corner.env["USAGE_STREAM_KAFKA_BOOTSTRAP"],
                         corner.env["USAGE_STREAM_HEALTH_TOPIC"])  # fmt: skip
    found = [json.loads(r.value) for r in records]
    return [f for f in found if f["account"] == account]


def test_each_crossing_is_reported_once_whatever_kills_the_worker(corner: Corner) -> None:
    fast_health(corner)
    collector = corner.service("collector").start()
    worker = corner.service("worker").start()
    try:
        now = datetime.now(UTC)
        features = ("report_created", "dashboard_viewed")
        thriving = [track(name, "thriving", now - timedelta(hours=h))
                    for h in range(30) for name in features]  # fmt: skip
        # fading: one report 12 days ago; recency 14.3, frequency 3.3, breadth 50, trend 0
        fading = [track("report_created", "fading", now - timedelta(days=12))]
        post(collector, corner.write_key, thriving + fading)
        down = wait_until(lambda: crossings(corner, "fading"), 60)
        assert [(c["id"], c["direction"]) for c in down] == [("acme:fading:1", "down")]
        assert down[0]["score"] < 40 and down[0]["components"]["breadth"] == 50.0
        for _ in range(2):  # killed between checks or in the middle of one, restarted
            worker.kill()
            worker.start()
            time.sleep(3)  # six checks
        assert len(crossings(corner, "fading")) == 1
        assert crossings(corner, "thriving") == []  # never below the threshold: nothing to say

        post(collector, corner.write_key, [
            track(name, "fading", now - timedelta(minutes=m))
            for m in range(10) for name in features
        ])  # fmt: skip
        wait_until(lambda: len(crossings(corner, "fading")) == 2, 60)
        worker.kill()  # right after the second crossing was reported
        worker.start()
        time.sleep(3)
        found = crossings(corner, "fading")
        assert [(c["id"], c["direction"]) for c in found] == [
            ("acme:fading:1", "down"), ("acme:fading:2", "up")
        ]  # fmt: skip
        assert found[1]["score"] >= 40
    finally:
        worker.stop()
        collector.stop()


def test_the_watch_reads_its_memory_back_past_records_not_its_own(kafka: LocalBroker) -> None:
    topic = f"account_health-{uuid.uuid4().hex[:8]}"
    ensure_topics_with_config(kafka.bootstrap, topic, 2, True)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap, acks="all")
    records = [
        {"tenant": "acme", "account": "a", "crossing": 1, "below": True},
        b"not json",
        {"tenant": "acme", "account": "a", "crossing": 2, "below": False},
        {"tenant": "acme", "account": "b", "crossing": 1, "below": True},
        {"tenant": "acme"},
    ]
    for record in records:
        value = record if isinstance(record, bytes) else json.dumps(record).encode()
        producer.send(topic, key=b"acme:a", value=value)  # one partition: in this order
    producer.flush()
    producer.close()
    assert read_sides(kafka.bootstrap, topic) == {("acme", "a"): (2, False)} | {
        ("acme", "b"): (1, True)
    }
