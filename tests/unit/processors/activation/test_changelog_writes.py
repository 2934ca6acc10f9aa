"""Table writes to their changelog in record batches: split by partition and batch size, and
only the writes of a batch the broker did not ack sent again (a fake producer, no Kafka)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from processors.activation import tables
from processors.activation.tables import write_durably


class Batch:
    """aiokafka's BatchBuilder as used: `append` answers None once the batch is full."""

    def __init__(self, room: int) -> None:
        self.room = room
        self.records: list[tuple[bytes, bytes | None]] = []

    def append(self, *, key: bytes, value: bytes | None, timestamp: None) -> object | None:
        if len(self.records) == self.room:
            return None
        self.records.append((key, value))
        return object()


class Producer:
    def __init__(self, room: int, failing: int = 0) -> None:
        self.room = room
        self.failing = failing  # how many of the next batches the broker refuses
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes | None]]]] = []

    def create_batch(self) -> Batch:
        return Batch(self.room)

    async def send_batch(self, batch: Batch, topic: str, *, partition: int) -> asyncio.Future[Any]:
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.failing:
            self.failing -= 1
            ack.set_exception(ConnectionError("broker gone"))
        else:
            self.sent.append((topic, partition, batch.records))
            ack.set_result(None)
        return ack


class Table:
    """The parts of a faust table the writes touch."""

    def __init__(self, producer: Producer) -> None:
        self.data: dict[bytes, bytes] = {}
        self.app = type("App", (), {"producer": type("P", (), {})()})()
        self.app.producer._ensure_producer = lambda: producer
        self.changelog_topic = type("T", (), {"get_topic_name": lambda self: "state-changelog"})()


def run(table: Table, writes: list[tables.Write]) -> list[Exception]:
    failures: list[Exception] = []
    asyncio.run(write_durably(table, writes, lambda exc, backoff: failures.append(exc)))
    return failures


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    async def at_once(*args: Any) -> None:
        return None

    monkeypatch.setattr(asyncio, "sleep", at_once)


def test_writes_go_in_batches_per_partition_in_order_and_set_the_table() -> None:
    producer = Producer(room=2)
    table = Table(producer)
    writes = [(p, f"k{i}".encode(), f"v{i}".encode()) for i, p in enumerate([1, 0, 1, 1, 0])]
    table.data[b"gone"] = b"old"
    assert run(table, [*writes, (0, b"gone", None)]) == []
    assert producer.sent == [
        ("state-changelog", 0, [(b"k1", b"v1"), (b"k4", b"v4")]),
        ("state-changelog", 0, [(b"gone", None)]),
        ("state-changelog", 1, [(b"k0", b"v0"), (b"k2", b"v2")]),
        ("state-changelog", 1, [(b"k3", b"v3")]),
    ]
    assert table.data == {f"k{i}".encode(): f"v{i}".encode() for i in range(5)}


def test_only_the_writes_of_a_batch_not_acked_are_sent_again() -> None:
    producer = Producer(room=2, failing=1)  # the first batch (partition 0) is refused once
    writes = [(p, f"k{i}".encode(), b"v") for i, p in enumerate([0, 0, 1, 1])]
    failures = run(Table(producer), writes)
    assert [type(f) for f in failures] == [ConnectionError]
    assert producer.sent == [
        ("state-changelog", 1, [(b"k2", b"v"), (b"k3", b"v")]),
        ("state-changelog", 0, [(b"k0", b"v"), (b"k1", b"v")]),
    ]
