"""HTTP → collector → Kafka → faust worker → ClickHouse, on the real broker and chDB."""

from __future__ import annotations

import gzip
import json
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer

from tests.conftest import Corner
from tests.harness import Service, basic, bearer, http, wait_until
from usage_stream.broker import LocalBroker
from usage_stream.up import free_port

pytestmark = pytest.mark.integration


def track(**fields: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": str(uuid.uuid4()),
        "userId": "user-1",
        "groupId": "acct-1",
        "event": "report_created",
        "properties": {"charts": 3, "template": "funnel", "nested": {"a": [1, 2]}},
        "context": {"library": {"name": "tests", "version": "1"}},
        **fields,
    }


def stored(worker: Service, corner: Corner, ids: list[str]) -> list[dict[str, Any]]:
    query = "&".join(f"message_id={i}" for i in ids)
    status, body = http(
        "GET", f"{worker.url}/v1/events?{query}&limit=10000", None, bearer(corner.read_key)
    )
    assert status == 200, body
    return list(body)


def test_a_batch_is_in_clickhouse_within_5s_with_every_field(
    corner: Corner, worker: Service, collector: Service
) -> None:
    sent_at = datetime.now(UTC)
    skewed = sent_at + timedelta(minutes=10)  # the client's clock runs 10 minutes fast
    events = [
        track(timestamp=(skewed - timedelta(seconds=30)).isoformat(), sentAt=skewed.isoformat()),
        {"type": "identify", "messageId": str(uuid.uuid4()), "userId": "user-1",
         "traits": {"email": "a@example.com", "plan": "team"}},
        {"type": "group", "messageId": str(uuid.uuid4()), "userId": "user-1",
         "groupId": "acct-1", "traits": {"name": "Acme"}},
    ]  # fmt: skip
    posted = datetime.now(UTC)
    status, body = http(
        "POST", f"{collector.url}/v1/batch", {"batch": events}, basic(corner.write_key)
    )
    assert (status, body) == (200, {"success": True, "accepted": 3, "rejected": [], "warnings": []})

    ids = [e["messageId"] for e in events]
    rows = wait_until(
        lambda: len(stored(worker, corner, ids)) == 3 and stored(worker, corner, ids), 5
    )
    by_id = {row["message_id"]: row for row in rows}
    first = by_id[ids[0]]
    assert first["event"] == "report_created"
    assert first["account"] == "acct-1" and first["user_id"] == "user-1"
    assert first["properties"] == events[0]["properties"]
    assert first["context"] == events[0]["context"]
    received = datetime.fromisoformat(first["received_at"])
    assert posted - timedelta(seconds=1) <= received <= datetime.now(UTC)
    # corrected: timestamp - (sentAt - receivedAt) = receivedAt - 30 s, whatever the skew
    corrected = datetime.fromisoformat(first["timestamp"])
    assert abs((received - corrected) - timedelta(seconds=30)) < timedelta(milliseconds=2)
    assert by_id[ids[1]]["traits"] == {"email": "a@example.com", "plan": "team"}
    assert by_id[ids[2]]["type"] == "group" and by_id[ids[2]]["account"] == "acct-1"


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_compressed_batches_are_produced_and_read(
    corner: Corner, worker: Service, compression: str
) -> None:
    """The worker's consumer (aiokafka) reads lz4 and zstd batches only with cramjam."""
    collector = corner.service("collector", USAGE_STREAM_KAFKA_COMPRESSION=compression).start()
    try:
        events = [track() for _ in range(50)]
        status, body = http(
            "POST", f"{collector.url}/v1/batch", {"batch": events}, basic(corner.write_key)
        )
        assert status == 200 and body["accepted"] == 50
        ids = [e["messageId"] for e in events]
        wait_until(lambda: len(stored(worker, corner, ids)) == 50, 30)
    finally:
        collector.stop()


def test_a_batch_posted_twice_is_stored_once(
    corner: Corner, worker: Service, collector: Service
) -> None:
    events = [track(), track(), track()]
    for _ in range(2):
        status, _ = http(
            "POST", f"{collector.url}/v1/batch", {"batch": events}, basic(corner.write_key)
        )
        assert status == 200
    marker = track()
    http("POST", f"{collector.url}/v1/batch", {"batch": [marker]}, basic(corner.write_key))
    ids = [e["messageId"] for e in events]
    wait_until(lambda: stored(worker, corner, [marker["messageId"]]), 10)
    assert sorted(r["message_id"] for r in stored(worker, corner, ids)) == sorted(ids)


def test_collector_errors_on_the_real_broker(corner: Corner, collector: Service) -> None:
    url = f"{collector.url}/v1/batch"
    status, body = http("POST", url, b"{not json", basic(corner.write_key))
    assert status == 400 and "not JSON" in body["detail"]
    status, body = http(
        "POST", url, {"batch": [{"type": "track", "messageId": "x"}]}, basic(corner.write_key)
    )  # judged event by event: 200, the event rejected with its reasons, as Segment answers
    assert status == 200 and body["accepted"] == 0
    assert {e["field"] for e in body["rejected"][0]["errors"]} >= {"batch.0.track.event"}
    status, body = http("POST", url, {"batch": [track()]}, basic("wk_nobody"))
    assert status == 401
    huge = gzip.compress(json.dumps({"batch": [track(properties={"x": "y" * 2_000_000})]}).encode())
    status, body = http("POST", url, huge, {**basic(corner.write_key), "Content-Encoding": "gzip"})
    assert status == 413


def test_collector_answers_503_when_kafka_is_unreachable(corner: Corner) -> None:
    dead = corner.service(
        "collector",
        USAGE_STREAM_KAFKA_BOOTSTRAP=f"127.0.0.1:{free_port()}",
        USAGE_STREAM_PRODUCE_TIMEOUT_SECONDS="2",
    )
    dead.start(ready_path="/healthz")
    try:
        assert http("GET", f"{dead.url}/readyz")[0] == 503
        status, body = http(
            "POST", f"{dead.url}/v1/batch", {"batch": [track()]}, basic(corner.write_key)
        )
        assert status == 503, body
        assert body["status"] == 503 and "retry" in body["title"]
    finally:
        dead.stop()


def test_a_malformed_kafka_message_is_dead_lettered_and_the_rest_stored(
    corner: Corner, worker: Service, collector: Service
) -> None:
    bootstrap = corner.env["USAGE_STREAM_KAFKA_BOOTSTRAP"]
    producer = KafkaProducer(bootstrap_servers=bootstrap)
    producer.send(corner.env["USAGE_STREAM_EVENTS_TOPIC"], key=b"acme:acct-1", value=b"{broken")
    producer.flush()
    producer.close()
    good = track()
    http("POST", f"{collector.url}/v1/batch", {"batch": [good]}, basic(corner.write_key))
    wait_until(lambda: stored(worker, corner, [good["messageId"]]), 10)

    consumer = KafkaConsumer(
        corner.env["USAGE_STREAM_INVALID_TOPIC"],
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        consumer_timeout_ms=10_000,
    )
    parked = next(iter(consumer))
    consumer.close()
    assert parked.value == b"{broken"
    headers = dict(parked.headers)
    assert b"not an event" in headers["reason"]


@pytest.mark.timeout(300)
def test_a_worker_started_before_its_broker_waits_for_it(corner: Corner, tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "late-kafka", port=free_port(), controller_port=free_port())
    worker = corner.service("worker", USAGE_STREAM_KAFKA_BOOTSTRAP=broker.bootstrap)
    starting = threading.Thread(target=lambda: worker.start(timeout=180))
    starting.start()
    try:
        time.sleep(40)  # longer than kafka-python's own bootstrap timeout: it used to exit here
        assert worker.process is not None and worker.process.poll() is None
        assert "does not answer" in worker.log_file.read_text()
        broker.start()
        starting.join(180)
        status, body = http("GET", f"{worker.url}/readyz")
        assert status == 200, body
    finally:
        worker.stop()
        broker.stop()
