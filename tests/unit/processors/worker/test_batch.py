"""One worker batch on in-memory parts: bad messages parked, copies dropped, failures retried."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from usage_stream_sdk.retry import Backoff

from processors.delivery.retry import retry_forever
from processors.model import Delivery, RawMessage
from processors.storage.events import InMemoryEventStore
from processors.worker.batch import run_batch
from schemas import EnrichedEvent


def message(offset: int, message_id: str, partition: int = 0) -> RawMessage:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    event = EnrichedEvent(
        tenant="acme", type="track", message_id=message_id, event="e", account="a",
        user_id="u", timestamp=now, received_at=now,
    )  # fmt: skip
    return RawMessage(partition, offset, b"acme:a", event.to_kafka())


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.seen: list[list[tuple[str, int]]] = []

    def write(self, originals: Sequence[Delivery]) -> None:
        self.seen.append([(d.event.message_id, d.offset) for d in originals])


def test_bad_messages_are_rejected_with_a_reason_and_the_rest_go_on() -> None:
    store, recorder = InMemoryEventStore(), Recorder()
    messages = [message(0, "m1"), RawMessage(0, 1, None, b"{not json"), message(2, "m2"),
                RawMessage(0, 3, None, b'{"tenant": "acme"}')]  # fmt: skip
    result = run_batch(messages, store, [recorder])
    assert result.stored == 2
    assert [r.message.offset for r in result.rejected] == [1, 3]
    assert all(r.reason.startswith("not an event of the contract") for r in result.rejected)
    assert recorder.seen == [[("m1", 0), ("m2", 2)]]


def test_copies_are_duplicates_but_a_redelivery_is_the_original() -> None:
    store, recorder = InMemoryEventStore(), Recorder()
    run_batch([message(0, "m1"), message(1, "m1")], store, [recorder])  # a copy in one batch
    again = run_batch([message(0, "m1"), message(7, "m1")], store, [recorder])
    assert recorder.seen == [[("m1", 0)], [("m1", 0)]]  # offset 0 is handed on again, 7 is not
    assert (again.stored, again.duplicates) == (1, 1)


def test_a_failing_store_is_retried_until_it_writes() -> None:
    store, recorder = InMemoryEventStore(), Recorder()
    store.fail_next = 2
    failures: list[str] = []

    async def attempt() -> int:
        return run_batch([message(0, "m1")], store, [recorder]).stored

    stored = asyncio.run(
        retry_forever(
            attempt,
            lambda exc, backoff: failures.append(str(exc)),
            backoff=Backoff(base=0.001, cap=0.01),
        )
    )
    assert stored == 1 and failures == ["injected store failure"] * 2
    assert recorder.seen == [[("m1", 0)]]


def stored_event(i: int, received_at: datetime) -> EnrichedEvent:
    return EnrichedEvent(
        tenant="acme", type="track", message_id=f"m-{i}", event="api_call", account="a-1",
        timestamp=received_at, received_at=received_at,
    )  # fmt: skip


def test_run_batch_times_every_processor_and_reports_when_originals_were_received() -> None:
    now = datetime.now(UTC)
    events = [stored_event(i, now - timedelta(seconds=i)) for i in range(3)]
    messages = [RawMessage(0, i, b"k", e.to_kafka()) for i, e in enumerate(events)]
    messages.append(RawMessage(0, 3, b"k", events[0].to_kafka()))  # a duplicate
    messages.append(RawMessage(0, 4, b"k", b"not json"))
    result = run_batch(messages, InMemoryEventStore(), [Recorder()])
    assert set(result.processor_seconds) == {"raw", "recorder"}
    assert all(s >= 0 for s in result.processor_seconds.values())
    assert result.received_at == [e.received_at for e in events]
    assert (result.stored, result.duplicates, len(result.rejected)) == (3, 1, 1)
