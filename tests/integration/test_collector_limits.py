"""The collector's limits and per-key rate limit on the real broker, and the SDK obeying 429."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from usage_stream_sdk import Client

from tests.conftest import Corner
from tests.harness import Service, basic, http
from tests.integration.topic_reader import message_ids

pytestmark = pytest.mark.integration


@pytest.fixture
def limited(corner: Corner) -> Iterator[Service]:
    service = corner.service(
        "collector",
        USAGE_STREAM_MAX_EVENT_BYTES="1024",
        USAGE_STREAM_MAX_BATCH_EVENTS="5",
        USAGE_STREAM_RATE_LIMIT_EVENTS_PER_SECOND="20",
        USAGE_STREAM_RATE_LIMIT_BURST="10",
    ).start()
    try:
        yield service
    finally:
        service.stop()


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": str(uuid.uuid4()), "userId": "user-1",
            "event": "api_call", **fields}  # fmt: skip


def test_limits_reject_what_is_too_big_and_429_throttles_a_key(
    corner: Corner, limited: Service
) -> None:
    url, auth = f"{limited.url}/v1/batch", basic(corner.write_key)
    status, problem = http("POST", url, {"batch": [track() for _ in range(6)]}, auth)
    assert status == 413 and "limit is 5" in problem["detail"]

    fine, big = track(), track(properties={"blob": "x" * 2000})
    status, answer = http("POST", url, {"batch": [fine, big]}, auth)
    assert status == 200 and answer["accepted"] == 1
    assert "the limit is 1024" in answer["rejected"][0]["reason"]

    # 20 events a second with bursts of 10: batches of 5 in a row soon overdraw the bucket
    answers = []
    for _ in range(20):
        answers.append(http("POST", url, {"batch": [track() for _ in range(5)]}, auth))
        if answers[-1][0] == 429:
            break
    status, problem = answers[-1]
    assert status == 429, [s for s, _ in answers]
    assert problem["code"] == "rate_limited"
    # the other tenant's key has its own bucket
    other = basic(json.loads(corner.env["USAGE_STREAM_WRITE_KEYS"])["other"])
    assert http("POST", url, {"batch": [track()]}, other)[0] == 200


def test_the_sdk_waits_out_429s_and_delivers_everything(corner: Corner, limited: Service) -> None:
    client = Client(corner.write_key, limited.url, flush_at=5, flush_interval=0.05)
    try:
        ids = [client.track("user-1", "api_call", {"n": i}).message_id for i in range(40)]
        assert client.flush(timeout=240)
        stats = client.stats
    finally:
        client.shutdown(timeout=5)
    assert stats.delivered == 40 and stats.failed == 0
    assert stats.retries >= 1  # 40 events at 20 a second with bursts of 10: throttled
    bootstrap, topic = (
        corner.env["USAGE_STREAM_KAFKA_BOOTSTRAP"],
        corner.env["USAGE_STREAM_EVENTS_TOPIC"],
    )
    assert set(ids) <= set(message_ids(bootstrap, topic))
