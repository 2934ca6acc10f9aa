"""The collector's partial-acceptance contract, limits, clamping and rate limit, in memory."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from ingest.collector import create_collector
from ingest.limits import Limits
from ingest.ratelimit import RateLimiter
from ingest.sink import InMemoryEventSink
from tests.harness import basic
from tests.unit.ingest.test_collector import event

KEYS = {"wk_acme": "acme"}
LIMITS = Limits(max_body_bytes=64 * 1024, max_batch_events=10, max_event_bytes=1024)


@pytest.fixture
def sink() -> InMemoryEventSink:
    return InMemoryEventSink()


@pytest.fixture
def client(sink: InMemoryEventSink) -> TestClient:
    return TestClient(create_collector(sink, KEYS, LIMITS))


def post(client: TestClient, body: Any, path: str = "/v1/batch") -> Any:
    # json.dumps escapes non-ASCII, so lone surrogates travel as a sender's JSON would carry them
    return client.post(path, content=json.dumps(body).encode(), headers=basic("wk_acme"))


def test_one_bad_event_does_not_cost_the_good_ones(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    no_event = {k: v for k, v in event(2).items() if k != "event"}
    batch = [event(1), no_event, "not an object", event(4, type="page"), event(5)]
    response = post(client, {"batch": batch, "sentAt": datetime.now(UTC).isoformat()})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["success"], answer["accepted"]) == (False, 2)
    assert [e.message_id for e in sink.events] == ["m-1", "m-5"]
    rejected = {r["index"]: r for r in answer["rejected"]}
    assert set(rejected) == {1, 2, 3}
    assert rejected[1]["messageId"] == "m-2"
    assert [e["field"] for e in rejected[1]["errors"]] == ["batch.1.track.event"]
    assert rejected[2]["messageId"] is None and "JSON object" in rejected[2]["reason"]
    assert "page calls are not supported" in rejected[3]["reason"]
    # the same three are parked on events.invalid, in order, as they were sent
    assert [r.index for r in sink.invalid] == [1, 2, 3]
    assert json.loads(sink.invalid[0].raw) == no_event
    assert json.loads(sink.invalid[1].raw) == "not an object"


def test_dead_letters_carry_what_an_operator_needs_to_replay(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    sent_at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    bad = event(7, userId=None)
    post(client, {"batch": [event(1), bad], "sentAt": sent_at.isoformat()})
    (parked,) = sink.invalid
    headers = {k: v.decode() for k, v in parked.kafka_headers()}
    assert parked.kafka_key() == b"acme"
    assert headers["tenant"] == "acme" and headers["source"] == "collector"
    assert headers["index"] == "1"
    assert headers["sent-at"] == sent_at.isoformat()
    assert "either userId or anonymousId" in json.loads(headers["errors"])[0]["message"]
    assert datetime.fromisoformat(headers["received-at"]) > sent_at


def test_nothing_is_accepted_when_kafka_is_down_even_in_a_mixed_batch(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    sink.down = True
    response = post(client, {"batch": [event(1), {"type": "track"}]})
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert sink.events == [] and sink.invalid == []


def test_an_event_over_the_size_limit_is_rejected_alone(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    big = event(2, properties={"blob": "x" * 2000})
    response = post(client, {"batch": [event(1), big]})
    assert response.status_code == 200
    (rejected,) = response.json()["rejected"]
    assert rejected["index"] == 1 and "the limit is 1024" in rejected["reason"]
    (parked,) = sink.invalid
    assert parked.truncated and len(parked.raw) == LIMITS.max_event_bytes
    assert dict(parked.kafka_headers())["truncated"] == b"true"


def test_too_many_events_in_one_batch_is_413(client: TestClient, sink: InMemoryEventSink) -> None:
    response = post(client, {"batch": [event(i) for i in range(11)]})
    assert response.status_code == 413
    assert "limit is 10" in response.json()["detail"]
    assert sink.events == [] and sink.invalid == []


def test_a_far_future_timestamp_is_clamped_flagged_and_reported(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    future = datetime.now(UTC) + timedelta(days=3)
    near = datetime.now(UTC) + timedelta(minutes=5)  # within the hour allowed: kept
    before = datetime.now(UTC)
    response = post(
        client,
        {"batch": [event(1, timestamp=future.isoformat()), event(2, timestamp=near.isoformat())]},
    )
    assert response.status_code == 200
    (warning,) = response.json()["warnings"]
    assert warning["index"] == 0 and warning["messageId"] == "m-1"
    clamped, kept = sink.events
    assert clamped.timestamp == clamped.received_at and clamped.received_at >= before
    assert clamped.original_timestamp == future
    assert clamped.context["usageStream"]["clampedTimestamp"] == future.isoformat()
    assert kept.timestamp == near and "usageStream" not in kept.context


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("timestamp", "0001-01-01T00:00:00+14:00"),  # overflows when taken to UTC
        ("timestamp", "9999-12-31T23:59:59-14:00"),
        ("timestamp", "1899-12-31T00:00:00Z"),
        ("sentAt", "2999-01-01T00:00:00Z"),
        ("properties", {"text": "\ud800"}),  # a lone surrogate: JSON allows it, UTF-8 does not
        ("groupId", "\udfff"),
    ],
)
def test_values_that_cannot_be_stored_reject_the_event_not_the_request(
    client: TestClient, sink: InMemoryEventSink, field: str, value: Any
) -> None:
    response = post(client, {"batch": [event(1), event(2, **{field: value})]})
    assert response.status_code == 200, response.text
    assert [r["index"] for r in response.json()["rejected"]] == [1]
    assert [e.message_id for e in sink.events] == ["m-1"]


def test_deep_nesting_rejects_the_event(client: TestClient, sink: InMemoryEventSink) -> None:
    deep: dict[str, Any] = {}
    cursor = deep
    for _ in range(40):
        cursor["a"] = {}
        cursor = cursor["a"]
    response = post(client, {"batch": [event(1), event(2, properties=deep)]})
    assert response.status_code == 200
    assert "nested deeper" in response.json()["rejected"][0]["reason"]


def test_single_calls_that_cannot_be_stored_are_rejected_and_parked(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    for path in ("/v1/page", "/v1/screen", "/v1/alias"):
        response = post(client, {"messageId": "p-1", "userId": "u-1", "name": "Home"}, path)
        assert response.status_code == 200
        assert response.json()["accepted"] == 0
        assert "not supported" in response.json()["rejected"][0]["reason"]
    response = post(client, {"messageId": "t-1", "userId": "u-1", "type": "identify"}, "/v1/track")
    assert "sent to /v1/track" in response.json()["rejected"][0]["reason"]
    no_event = post(client, {"messageId": "t-2", "userId": "u-1"}, "/v1/track").json()
    expected = [{"field": "track.event", "message": "Field required"}]
    assert no_event["rejected"][0]["errors"] == expected
    assert len(sink.invalid) == 5 and sink.events == []


def test_import_is_segments_other_name_for_batch(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    assert post(client, {"batch": [event(1)]}, "/v1/import").status_code == 200
    assert len(sink.events) == 1


def test_problem_bodies_also_speak_segments_code_and_message(client: TestClient) -> None:
    problem = client.post("/v1/batch", content=b"[", headers=basic("wk_acme")).json()
    assert problem["code"] == "bad_payload"
    assert problem["message"] == problem["detail"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_write_key_over_its_rate_gets_429_with_retry_after(sink: InMemoryEventSink) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2, burst=4, clock=clock)
    client = TestClient(create_collector(sink, KEYS, LIMITS, rate_limiter=limiter))
    assert post(client, {"batch": [event(i) for i in range(4)]}).status_code == 200
    refused = post(client, {"batch": [event(9)]})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "1"  # one token at 2 per second: half a second
    assert refused.json()["code"] == "rate_limited"
    assert len(sink.events) == 4
    clock.now += 0.5
    assert post(client, {"batch": [event(9)]}).status_code == 200
    # a key in the body is limited the same way
    body = {"batch": [event(10)], "writeKey": "wk_acme"}
    assert client.post("/v1/batch", json=body).status_code == 429
