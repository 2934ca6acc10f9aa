"""What the worker's progress says about receipt times (processors.worker_progress.receipts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.model import Delivery, Event
from processors.worker_progress.receipts import CaughtUp, received_through
from processors.worker_progress.store import InMemoryWorkerProgress

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SLACK = timedelta(seconds=30)


def delivery(partition: int, offset: int, received: datetime) -> Delivery:
    event = Event(contract=1, tenant="acme", type="track", message_id=f"m-{partition}-{offset}",
                  timestamp=T, received_at=received)  # fmt: skip
    return Delivery(event, partition, offset)


def test_a_batch_vouches_for_its_latest_receipt_per_partition_less_the_slack() -> None:
    deliveries = [
        delivery(0, 10, T),
        delivery(0, 11, T + timedelta(seconds=5)),
        delivery(0, 12, T + timedelta(seconds=2)),  # received earlier, produced later
        delivery(2, 40, T - timedelta(minutes=1)),
    ]
    assert received_through(deliveries, SLACK) == {
        0: T + timedelta(seconds=5) - SLACK,
        2: T - timedelta(minutes=1) - SLACK,
    }
    assert received_through([], SLACK) == {}


def test_partitions_written_to_their_end_are_complete_until_the_broker_was_asked() -> None:
    offsets = InMemoryWorkerProgress()
    offsets.record({0: 10, 1: 4}, {0: T - timedelta(hours=1), 1: T - timedelta(hours=1)})
    caught_up = CaughtUp(offsets, SLACK)
    # 0 is written to its end; 1 has events waiting; 2 never had one
    caught_up.record(T, {0: 10, 1: 9, 2: 0})
    assert offsets.through == {0: T - SLACK, 1: T - timedelta(hours=1), 2: T - SLACK}
    assert offsets.first_unwritten([0, 1, 2]) == {0: 10, 1: 4, 2: 0}


def test_an_idle_partition_advances_a_slack_at_a_time() -> None:
    offsets = InMemoryWorkerProgress()
    caught_up = CaughtUp(offsets, SLACK)
    caught_up.record(T, {0: 0})
    caught_up.record(T + SLACK / 2, {0: 0})  # within the slack of the last time: no new row
    assert offsets.through == {0: T - SLACK}
    caught_up.record(T + SLACK, {0: 0})
    assert offsets.through == {0: T}
