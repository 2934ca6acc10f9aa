"""The collector's contract on an in-memory sink: statuses, problem bodies, what is accepted."""

from __future__ import annotations

import gzip
import json

import pytest
from fastapi.testclient import TestClient

from ingest.collector import create_collector
from ingest.intake import write_key_from_header
from ingest.limits import Limits
from ingest.sink import InMemoryEventSink
from tests.harness import basic

KEYS = {"wk_acme": "acme"}
LIMIT = 4096


@pytest.fixture
def sink() -> InMemoryEventSink:
    return InMemoryEventSink()


@pytest.fixture
def client(sink: InMemoryEventSink) -> TestClient:
    return TestClient(create_collector(sink, KEYS, Limits(max_body_bytes=LIMIT)))


def event(i: int = 1, **fields: object) -> dict[str, object]:
    return {
        "type": "track",
        "messageId": f"m-{i}",
        "userId": "u-1",
        "groupId": "a-1",
        "event": "api_call",
        "properties": {"n": i},
        **fields,
    }


def test_batch_is_accepted_with_tenant_from_the_write_key(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    response = client.post(
        "/v1/batch", json={"batch": [event(1), event(2)]}, headers=basic("wk_acme")
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "accepted": 2, "rejected": [], "warnings": []}
    assert [(e.tenant, e.message_id, e.properties) for e in sink.events] == [
        ("acme", "m-1", {"n": 1}),
        ("acme", "m-2", {"n": 2}),
    ]


def test_single_call_endpoints_take_their_type_from_the_path(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    identify = {"messageId": "i-1", "userId": "u-1", "traits": {"plan": "team"}}
    group = {"messageId": "g-1", "userId": "u-1", "groupId": "a-1", "traits": {"name": "A"}}
    track = {k: v for k, v in event(3).items() if k != "type"}
    for path, body in (("identify", identify), ("group", group), ("track", track)):
        assert client.post(f"/v1/{path}", json=body, headers=basic("wk_acme")).status_code == 200
    assert [e.type for e in sink.events] == ["identify", "group", "track"]
    assert sink.events[0].traits == {"plan": "team"}
    assert sink.events[1].account == "a-1"


def test_gzip_bodies_are_accepted(client: TestClient, sink: InMemoryEventSink) -> None:
    body = gzip.compress(json.dumps({"batch": [event()]}).encode())
    headers = {**basic("wk_acme"), "Content-Encoding": "gzip", "Content-Type": "application/json"}
    assert client.post("/v1/batch", content=body, headers=headers).status_code == 200
    assert len(sink.events) == 1


def test_write_key_in_the_body_is_accepted_as_segment_does(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    response = client.post("/v1/batch", json={"batch": [event()], "writeKey": "wk_acme"})
    assert response.status_code == 200
    assert sink.events[0].tenant == "acme"


@pytest.mark.parametrize(
    ("headers", "body"),
    [({}, {"batch": [event()]}), (basic("wk_nope"), {"batch": [event()]})],
)
def test_unknown_or_missing_key_is_401(
    client: TestClient, sink: InMemoryEventSink, headers: dict[str, str], body: object
) -> None:
    response = client.post("/v1/batch", json=body, headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"].startswith("Basic")
    assert sink.events == []


def test_malformed_json_is_400_with_a_reason(client: TestClient) -> None:
    response = client.post("/v1/batch", content=b"{not json", headers=basic("wk_acme"))
    assert response.status_code == 400
    problem = response.json()
    assert problem["status"] == 400
    assert "not JSON" in problem["detail"]


def test_invalid_events_are_rejected_by_name_with_200_as_segment_answers(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    bad = {"type": "track", "userId": "u-1"}  # no messageId, no event
    response = client.post("/v1/batch", json={"batch": [bad]}, headers=basic("wk_acme"))
    assert response.status_code == 200
    answer = response.json()
    assert (answer["success"], answer["accepted"]) == (False, 0)
    (rejected,) = answer["rejected"]
    assert rejected["index"] == 0
    assert {"batch.0.track.messageId", "batch.0.track.event"} == {
        e["field"] for e in rejected["errors"]
    }
    assert sink.events == []
    assert [r.index for r in sink.invalid] == [0]  # parked on events.invalid


def test_body_over_the_limit_is_413(client: TestClient, sink: InMemoryEventSink) -> None:
    big = {"batch": [event(properties={"blob": "x" * LIMIT})]}
    response = client.post("/v1/batch", json=big, headers=basic("wk_acme"))
    assert response.status_code == 413
    assert sink.events == []


def test_gzip_that_inflates_past_the_limit_is_413(client: TestClient) -> None:
    bomb = gzip.compress(
        json.dumps({"batch": [event(properties={"z": "0" * 10 * LIMIT})]}).encode()
    )
    assert len(bomb) < LIMIT
    headers = {**basic("wk_acme"), "Content-Encoding": "gzip"}
    assert client.post("/v1/batch", content=bomb, headers=headers).status_code == 413


def test_corrupt_gzip_is_400(client: TestClient) -> None:
    headers = {**basic("wk_acme"), "Content-Encoding": "gzip"}
    assert client.post("/v1/batch", content=b"\x1f\x8bnope", headers=headers).status_code == 400


def test_sink_down_is_503_with_retry_after_and_nothing_accepted(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    sink.down = True
    response = client.post("/v1/batch", json={"batch": [event()]}, headers=basic("wk_acme"))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert sink.events == []
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_write_key_header_parsing() -> None:
    assert write_key_from_header(basic("k1")["Authorization"]) == "k1"
    assert write_key_from_header("Basic !!!") is None
    assert write_key_from_header("Bearer k1") is None
    assert write_key_from_header(None) is None
