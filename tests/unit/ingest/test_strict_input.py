"""Input the collector used to change or drop silently: each case is now judged, event by event,
with a reason the sender can read."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from ingest import strict_json, validation
from ingest.collector import create_collector
from ingest.limits import Limits
from ingest.sink import InMemoryEventSink
from ingest.strict_json import DuplicateKeys, NotJson
from tests.harness import basic
from tests.unit.ingest.test_collector import event

KEYS = {"wk_acme": "acme"}


@pytest.fixture
def sink() -> InMemoryEventSink:
    return InMemoryEventSink()


@pytest.fixture
def client(sink: InMemoryEventSink) -> TestClient:
    return TestClient(create_collector(sink, KEYS, Limits(max_body_bytes=256 * 1024)))


def good(i: int) -> str:
    return json.dumps(event(i))


def send(client: TestClient, body: bytes, gzipped: bool = False) -> Any:
    headers = {**basic("wk_acme"), **({"Content-Encoding": "gzip"} if gzipped else {})}
    return client.post("/v1/batch", content=body, headers=headers)


def batch(*items: str) -> bytes:
    return ('{"batch":[' + ",".join(items) + "]}").encode()


def rejected_reasons(response: Any) -> dict[int, str]:
    assert response.status_code == 200, response.text
    return {r["index"]: r["reason"] for r in response.json()["rejected"]}


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"])
def test_numbers_json_cannot_carry_reject_their_event_not_null_it(
    client: TestClient, sink: InMemoryEventSink, value: str
) -> None:
    bad = good(2).replace('"properties": {"n": 2}', f'"properties": {{"n": {value}}}')
    assert value in bad
    reasons = rejected_reasons(send(client, batch(good(1), bad, good(3))))
    assert list(reasons) == [1]
    assert "properties.n" in reasons[1] and value in reasons[1]
    assert [e.message_id for e in sink.events] == ["m-1", "m-3"]


def test_one_huge_integer_or_bad_byte_costs_only_its_event(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    huge = good(2).replace('"properties": {"n": 2}', '"properties": {"n": ' + "7" * 5000 + "}")
    bad_byte = good(3).encode().replace(b'"u-1"', b'"u-\xff"').decode("latin-1")
    body = batch(good(1), huge, good(4)).replace(
        good(4).encode(), bad_byte.encode("latin-1") + b"," + good(4).encode()
    )
    response = send(client, body)
    reasons = rejected_reasons(response)
    assert sorted(reasons) == [1, 2]
    assert "properties.n" in reasons[1] and "5000 characters" in reasons[1]
    [not_utf8] = [r for r in response.json()["rejected"] if r["index"] == 2]
    assert [e["field"] for e in not_utf8["errors"]] == ["batch.2.track.userId"]
    assert "unicode" in not_utf8["errors"][0]["message"]
    assert [e.message_id for e in sink.events] == ["m-1", "m-4"]


def test_duplicate_keys_reject_the_event(client: TestClient, sink: InMemoryEventSink) -> None:
    twice = good(2).replace('"type": "track"', '"type": "page", "type": "track"')
    two_ids = good(3).replace('"messageId": "m-3"', '"messageId": "m-3", "messageId": "m-9"')
    reasons = rejected_reasons(send(client, batch(good(1), twice, two_ids)))
    assert "duplicate keys: 'type'" in reasons[1]
    assert "duplicate keys: 'messageId'" in reasons[2]
    assert [e.message_id for e in sink.events] == ["m-1"]


def test_two_batches_in_one_body_are_refused_whole(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    body = ('{"batch":[' + good(1) + '],"batch":[' + good(2) + "]}").encode()
    response = send(client, body)
    assert response.status_code == 400 and "duplicate keys: 'batch'" in response.text
    assert sink.events == []


def test_every_member_of_a_multi_member_gzip_body_is_read(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    text = batch(good(1), good(2), good(3))
    body = gzip.compress(text[:20]) + gzip.compress(text[20:])  # JSON split across members
    assert rejected_reasons(send(client, body, gzipped=True)) == {}
    assert [e.message_id for e in sink.events] == ["m-1", "m-2", "m-3"]


def test_garbage_after_the_gzip_data_is_a_400(client: TestClient, sink: InMemoryEventSink) -> None:
    response = send(client, gzip.compress(batch(good(1))) + b"garbage", gzipped=True)
    assert response.status_code == 400 and "not another gzip member" in response.text
    assert sink.events == []


@pytest.mark.parametrize("when", [253402300799, 1700000000000, 1.7e9, "1700000000"])
def test_a_numeric_timestamp_is_rejected_not_guessed(
    client: TestClient, sink: InMemoryEventSink, when: Any
) -> None:
    reasons = rejected_reasons(send(client, batch(json.dumps(event(1, timestamp=when)))))
    assert "ISO 8601" in json.dumps(
        send(client, batch(json.dumps(event(2, timestamp=when)))).json()
    )
    assert list(reasons) == [0]
    assert sink.events == []


def test_an_identify_with_its_traits_in_the_context_keeps_them(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    identify = {"type": "identify", "messageId": "m-1", "userId": "u-1",
                "context": {"traits": {"plan": "team", "seats": 4}}}  # fmt: skip
    assert rejected_reasons(send(client, batch(json.dumps(identify)))) == {}
    [stored] = sink.events
    assert stored.traits == {"plan": "team", "seats": 4}


@pytest.mark.parametrize("when", ["0001-01-01T00:22:26+02:01", "9999-12-31T23:59:59-02:00"])
def test_a_time_past_the_calendar_once_in_utc_rejects_its_event_naming_the_field(
    client: TestClient, sink: InMemoryEventSink, when: str
) -> None:
    response = send(client, batch(good(1), json.dumps(event(2, timestamp=when))))
    [rejected] = response.json()["rejected"]
    assert rejected["index"] == 1 and "out of range once in UTC" in json.dumps(rejected)
    assert [e["field"] for e in rejected["errors"]] == ["batch.1.track.timestamp"]
    assert len(sink.events) == 1


def test_a_batch_sent_at_past_the_calendar_once_in_utc_is_a_400_naming_it(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    body = json.dumps({"batch": [event(1)], "sentAt": "0001-01-01T00:22:26+02:01"}).encode()
    response = send(client, body)
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["sentAt"]
    assert sink.events == []


@pytest.mark.parametrize("depth", [1_000, 30_000])
@pytest.mark.parametrize("opening", ['{"a":', "["])
def test_nesting_too_deep_to_parse_rejects_its_event_only(
    client: TestClient, sink: InMemoryEventSink, depth: int, opening: str
) -> None:
    closing = "}" if opening.startswith("{") else "]"
    deep = json.loads(good(2))
    deep["properties"] = {"x": "__deep__"}
    nested = json.dumps(deep).replace('"__deep__"', opening * depth + "1" + closing * depth)
    reasons = rejected_reasons(send(client, batch(good(1), nested, good(3))))
    assert list(reasons) == [1] and "nested deeper than 32 levels" in reasons[1]
    assert len(sink.events) == 2


def test_an_unbalanced_deep_body_is_still_not_json(client: TestClient) -> None:
    response = send(client, b'{"batch":[' + b"[" * 5_000 + b"]}")
    assert response.status_code == 400 and "not JSON" in response.text


def _json_values() -> st.SearchStrategy[Any]:
    plain = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
    marked = st.builds(NotJson, st.sampled_from(["NaN", "1e400"]))

    def duplicated(items: dict[str, Any]) -> DuplicateKeys:
        found = DuplicateKeys(items)
        found.duplicates = tuple(sorted(items)[:1])
        return found

    return st.recursive(
        plain | marked,
        lambda inner: (
            st.lists(inner, max_size=3)
            | st.dictionaries(st.text(max_size=3), inner, max_size=3)
            | st.dictionaries(st.text(max_size=3), inner, min_size=1, max_size=3).map(duplicated)
        ),
        max_leaves=30,
    )


@given(value=_json_values(), depth=st.integers(1, 6))
def test_the_quick_check_finds_a_problem_exactly_when_the_named_walk_does(
    value: Any, depth: int
) -> None:
    assert strict_json._sound(value, depth) == (strict_json._named_problem(value, depth) is None)


@given(value=_json_values())
def test_the_quick_size_never_understates_the_measured_size_beyond_its_bound(value: Any) -> None:
    quick = validation._quick_compact(value)
    if quick is not None:
        assert len(validation._compact(value)) <= validation.MAX_ESCAPE_GROWTH * len(quick)


def test_a_batch_context_that_cannot_be_encoded_rejects_its_events_with_the_reason(
    client: TestClient, sink: InMemoryEventSink
) -> None:
    body = batch(good(1), good(2))[:-1] + b',"context":{"x":"\\ud800"}}'
    reasons = rejected_reasons(send(client, body))
    assert list(reasons) == [0, 1] and all("UTF-8" in r for r in reasons.values())
    assert sink.events == []
