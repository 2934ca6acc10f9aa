"""The event contract: Segment field names, required fields, clock-skew correction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from schemas import Batch, EnrichedEvent, Track, corrected_timestamp

RECEIVED = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def track(**fields: object) -> dict[str, object]:
    return {
        "type": "track",
        "messageId": "m-1",
        "userId": "u-1",
        "event": "report_created",
        **fields,
    }


def test_corrected_timestamp_removes_the_client_clock_skew() -> None:
    # The client's clock runs 10 minutes fast: it stamped the event and the send with it.
    skew = timedelta(minutes=10)
    happened = RECEIVED - timedelta(seconds=30)
    corrected = corrected_timestamp(happened + skew, RECEIVED + skew, RECEIVED)
    assert corrected == happened


def test_without_sent_at_nothing_is_corrected_and_without_timestamp_received_at_is_used() -> None:
    stamped = RECEIVED - timedelta(hours=3)
    assert corrected_timestamp(stamped, None, RECEIVED) == stamped
    assert corrected_timestamp(None, RECEIVED, RECEIVED) == RECEIVED


def test_segment_field_names_are_read_from_the_wire() -> None:
    message = Track.model_validate(
        track(
            anonymousId="anon-1",
            groupId="acct-9",
            properties={"plan": "team"},
            timestamp="2026-03-01T11:59:00Z",
            sentAt="2026-03-01T12:00:00+01:00",
            context={"ip": "10.0.0.1"},
        )
    )
    assert message.message_id == "m-1"
    assert message.anonymous_id == "anon-1"
    assert message.account == "acct-9"
    assert message.properties == {"plan": "team"}
    assert message.sent_at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)


def test_naive_timestamps_are_taken_as_utc() -> None:
    message = Track.model_validate(track(timestamp="2026-03-01T11:59:00"))
    assert message.timestamp == datetime(2026, 3, 1, 11, 59, tzinfo=UTC)


def test_account_falls_back_to_segment_context_group_id() -> None:
    assert Track.model_validate(track(context={"groupId": "acct-2"})).account == "acct-2"
    assert Track.model_validate(track()).account is None


@pytest.mark.parametrize(
    ("missing", "fields"),
    [
        ("messageId", {"type": "track", "userId": "u", "event": "e"}),
        ("event", {"type": "track", "userId": "u", "messageId": "m"}),
        ("userId or anonymousId", {"type": "track", "event": "e", "messageId": "m"}),
        ("groupId", {"type": "group", "userId": "u", "messageId": "m"}),
    ],
)
def test_required_fields_are_required(missing: str, fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as error:
        Batch.model_validate({"batch": [fields]})
    assert missing.split(" ")[0] in str(error.value)


def test_unknown_call_types_and_empty_batches_are_refused() -> None:
    with pytest.raises(ValidationError):
        Batch.model_validate({"batch": [{**track(), "type": "teleport"}]})
    with pytest.raises(ValidationError):
        Batch.model_validate({"batch": []})


def test_enriched_event_carries_tenant_times_and_batch_context_and_round_trips() -> None:
    batch = Batch.model_validate(
        {
            "batch": [track(timestamp="2026-03-01T12:09:30Z", context={"page": "/x"})],
            "sentAt": "2026-03-01T12:10:00Z",
            "context": {"library": {"name": "sdk"}},
        }
    )
    event = EnrichedEvent.from_message(
        batch.batch[0],
        tenant="acme",
        received_at=RECEIVED,
        batch_sent_at=batch.sent_at,
        batch_context=batch.context,
    )
    assert event.timestamp == RECEIVED - timedelta(seconds=30)
    assert event.original_timestamp == datetime(2026, 3, 1, 12, 9, 30, tzinfo=UTC)
    assert event.context == {"library": {"name": "sdk"}, "page": "/x"}
    assert event.partition_key == "acme:user:u-1"
    assert EnrichedEvent.from_kafka(event.to_kafka()) == event
    assert b'"messageId":"m-1"' in event.to_kafka()
    assert b'"receivedAt"' in event.to_kafka()


def test_partition_key_is_tenant_and_account() -> None:
    message = Track.model_validate(track(groupId="acct-1"))
    event = EnrichedEvent.from_message(message, tenant="acme", received_at=RECEIVED)
    assert event.partition_key == "acme:acct-1"
