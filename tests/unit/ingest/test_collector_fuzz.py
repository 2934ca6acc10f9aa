"""Property-based: whatever bytes arrive, the collector answers with a 4xx or a consistent 200."""

from __future__ import annotations

import base64
import gzip
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ingest.collector import create_collector
from ingest.limits import Limits
from ingest.sink import InMemoryEventSink
from ingest.strict_json import _cut_deep

LIMITS = Limits(max_body_bytes=16 * 1024, max_batch_events=20, max_event_bytes=2048)
SINK = InMemoryEventSink()
# One app for every example: hypothesis runs hundreds, and the app keeps no per-request state.
CLIENT = TestClient(create_collector(SINK, {"wk_acme": "acme"}, LIMITS))
AUTH = "Basic " + base64.b64encode(b"wk_acme:").decode()
PATHS = ("/v1/batch", "/v1/import", "/v1/track", "/v1/identify", "/v1/group", "/v1/page")

# Text as JSON can carry it: any code point, lone surrogates included (hypothesis' own text
# strategy never yields them).
chars = st.characters() | st.integers(0xD800, 0xDFFF).map(chr)
texts = st.lists(chars, max_size=30).map("".join)
times = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)),
    st.integers(-1439, 1439),
) | st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2026-02-30"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
    | times
    | st.sampled_from(["", "track", "identify", "group", "page", "alias"])
    | st.integers(0, 40_000).map(lambda n: "x" * n)  # huge strings
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=20,
)
# What each field is most likely to be wrong with, besides being anything at all.
FIELDS = {
    "type": st.sampled_from(["track", "identify", "group", "page", "screen", "x"]),
    "messageId": texts, "userId": texts, "anonymousId": texts, "groupId": texts, "event": texts,
    "properties": json_values, "traits": json_values, "context": json_values,
    "integrations": json_values, "timestamp": times | st.integers() | st.floats(), "sentAt": times,
}  # fmt: skip


def valid_event(i: int) -> dict[str, Any]:
    return {"type": "track", "messageId": f"m-{i}", "userId": "u-1", "groupId": "a-1",
            "event": "api_call", "properties": {"n": i}}  # fmt: skip


@st.composite
def events(draw: st.DrawFn) -> Any:
    """A valid event with some fields deleted or replaced, or any JSON value at all."""
    if draw(st.integers(0, 5)) == 0:
        return draw(json_values)
    event: dict[str, Any] = valid_event(draw(st.integers(0, 10**6)))
    for field in draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=3)):
        if draw(st.integers(0, 3)) == 0:
            event.pop(field, None)
        else:
            event[field] = draw(FIELDS[field] | json_values)
    return event


def nested(depth: int, kind: str) -> bytes:
    if kind == "list":
        return b"[" * depth + b"]" * depth
    return b'{"a":' * depth + b"1" + b"}" * depth


documents = (
    st.builds(lambda items, extra: {"batch": items, **extra}, st.lists(events(), max_size=8),
              st.dictionaries(st.sampled_from(["sentAt", "context", "writeKey"]),
                              times | json_values))
    | events()
    | json_values
)  # fmt: skip
bodies = (
    documents.map(lambda d: json.dumps(d).encode())
    | st.binary(max_size=512)
    | st.builds(nested, st.integers(1, 50_000), st.sampled_from(["list", "object"]))
    | st.builds(lambda n: b'{"batch":' + b"[" * n, st.integers(1, 1000))  # truncated JSON
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, bytes, dict[str, str]]:
    body = draw(bodies)
    headers = {"Content-Type": "application/json"}
    encoding = draw(st.sampled_from([None, "gzip", "corrupt-gzip", "truncated-gzip", "br"]))
    if encoding == "gzip":
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    elif encoding == "corrupt-gzip":
        packed = bytearray(gzip.compress(body))
        at = draw(st.integers(0, len(packed) - 1))
        packed[at] ^= draw(st.integers(1, 255))
        body, headers["Content-Encoding"] = bytes(packed), "gzip"
    elif encoding == "truncated-gzip":
        packed = gzip.compress(body)
        body, headers["Content-Encoding"] = packed[: draw(st.integers(0, len(packed)))], "gzip"
    elif encoding == "br":
        headers["Content-Encoding"] = "br"
    auth = draw(st.sampled_from([AUTH, AUTH, AUTH, None, "Basic !!", "Bearer wk_acme"]))
    if auth is not None:
        headers["Authorization"] = auth
    return draw(st.sampled_from(PATHS)), body, headers


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(requests())
@example(("/v1/batch", nested(100_000, "list"), {"Authorization": AUTH}))
@example(
    (
        "/v1/batch",
        gzip.compress(b"0" * 10_000_000),
        {"Authorization": AUTH, "Content-Encoding": "gzip"},
    )
)
@example(("/v1/batch", b'{"batch":[{"messageId":' + b"9" * 5000 + b"}]}", {"Authorization": AUTH}))
def test_no_input_gets_a_5xx_or_an_inconsistent_answer(
    request: tuple[str, bytes, dict[str, str]],
) -> None:
    path, body, headers = request
    events_before, invalid_before = len(SINK.events), len(SINK.invalid)
    response = CLIENT.post(path, content=body, headers=headers)  # server errors would raise here
    assert response.status_code in (200, 400, 401, 413, 415), response.text
    answer = response.json()
    accepted = len(SINK.events) - events_before
    parked = len(SINK.invalid) - invalid_before
    if response.status_code == 200:
        # every event of the request is either accepted or rejected, and nothing else
        assert answer["accepted"] == accepted
        assert len({r["index"] for r in answer["rejected"]}) == len(answer["rejected"]) == parked
        assert answer["success"] is (parked == 0)
        raw = gzip.decompress(body) if "Content-Encoding" in headers else body
        # counted as JSON text, with no number converted: a 5000-digit one is still one event;
        # containers deeper than json's recursion are cut first (the count is of the top level)
        document = json.loads(
            _cut_deep(raw.decode("utf-8", "surrogateescape"), 64),
            parse_int=str, parse_float=str, parse_constant=str,
        )  # fmt: skip
        sent = len(document["batch"]) if path.endswith(("batch", "import")) else 1
        assert accepted + parked == sent
    else:
        assert response.headers["content-type"] == "application/problem+json"
        assert answer["status"] == response.status_code and answer["detail"]
        assert accepted == parked == 0
