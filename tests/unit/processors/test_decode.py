"""The worker's decode: a value of the current contract through msgspec, anything else through the
full validation; both must read every value the collector writes as the same event."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.model import Event, RawMessage, decode
from schemas import EnrichedEvent

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
times = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2199, 1, 1), timezones=st.just(UTC)
)


@st.composite
def enriched(draw: st.DrawFn) -> EnrichedEvent:
    kind = draw(st.sampled_from(["track", "identify", "group"]))
    return EnrichedEvent(
        tenant=draw(st.text(min_size=1, max_size=8)),
        type=kind,
        message_id=draw(st.text(min_size=1, max_size=12)),
        event=draw(st.text(max_size=8)) if kind == "track" else "",
        account=draw(st.text(max_size=8)),
        user_id=draw(st.text(max_size=8)),
        anonymous_id=draw(st.text(max_size=8)),
        properties=draw(st.dictionaries(st.text(max_size=6), json_values, max_size=4)),
        traits=draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3)),
        context=draw(st.dictionaries(st.text(max_size=6), json_values, max_size=3)),
        timestamp=draw(times),
        original_timestamp=draw(st.none() | times),
        sent_at=draw(st.none() | times),
        received_at=draw(times),
    )


def read(*values: bytes) -> tuple[list[Event], list[str]]:
    deliveries, rejected = decode([RawMessage(0, i, None, v) for i, v in enumerate(values)])
    return [d.event for d in deliveries], [r.reason for r in rejected]


def fields(event: Event | EnrichedEvent) -> dict[str, Any]:
    names = [
        "tenant", "type", "message_id", "event", "account", "user_id", "anonymous_id",
        "properties", "traits", "context", "timestamp", "original_timestamp", "sent_at",
        "received_at",
    ]  # fmt: skip
    return {name: getattr(event, name) for name in names}


@settings(max_examples=300, deadline=None)
@given(enriched())
def test_every_value_the_collector_writes_decodes_to_the_event_it_wrote(
    event: EnrichedEvent,
) -> None:
    (decoded,), rejected = read(event.to_kafka())
    assert not rejected
    assert fields(decoded) == fields(event)
    # and the same event the full validation reads from it, time zones included
    assert decoded == Event.of(EnrichedEvent.from_kafka(event.to_kafka()))
    assert decoded.timestamp.tzinfo is UTC
    assert msgspec.json.decode(event.to_kafka(), type=Event) == decoded  # by the fast path


def value(**changes: Any) -> bytes:
    document = orjson.loads(
        EnrichedEvent(
            tenant="acme",
            type="track",
            message_id="m-1",
            event="api_call",
            account="a-1",
            properties={"n": 2**70},
            timestamp=datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
            received_at=datetime(2026, 3, 1, 12, 30, 1, tzinfo=UTC),
        ).to_kafka()
    )
    document.update(changes)
    return orjson.dumps({k: v for k, v in document.items() if v is not ...})


def test_a_value_without_a_contract_version_is_validated_and_kept() -> None:
    (event,), rejected = read(value(contract=...))  # written before versions were
    assert not rejected
    assert event.message_id == "m-1" and event.properties == {"n": 2**70}


def test_times_in_another_zone_are_read_in_utc() -> None:
    (event,), _ = read(value(timestamp="2026-03-01T18:00:00+05:30"))
    assert event.timestamp == datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    assert event.timestamp.tzinfo is UTC
    assert event.timestamp.utcoffset() == timedelta(0)
    assert event.timestamp.astimezone(timezone(timedelta(hours=5, minutes=30))).hour == 18


def test_a_bad_value_of_any_version_is_rejected_with_the_validation_reason() -> None:
    events, rejected = read(
        value(type="page"), value(contract=2, timestamp="yesterday"), b"[1, 2]", value()
    )
    assert [e.message_id for e in events] == ["m-1"]
    assert len(rejected) == 3
    assert all(r.startswith("not an event of the contract: ") for r in rejected)
    assert all("validation error" in r for r in rejected)


def test_a_newer_version_is_read_by_the_full_validation() -> None:
    (event,), rejected = read(value(contract=2, extra="ignored"))
    assert not rejected and event.contract == 1 and event.account == "a-1"
