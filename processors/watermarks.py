"""How far a derived table has counted each Kafka partition, read back from the table itself.

A processor writes its rows and the next offset of each partition in the same insert; after a
crash, the rows of the batch that was being written are either all there (with their mark) or
none are, so `fresh` hands exactly the uncounted events to the retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from processors.clickhouse import ClickHouse
from processors.event_store import Delivery


def next_offsets(clickhouse: ClickHouse, table: str, batch: Sequence[Delivery]) -> dict[int, int]:
    """Per partition of the batch: the first offset `table` has not counted yet."""
    partitions = sorted({d.partition for d in batch})
    rows = clickhouse.query(
        f"SELECT kafka_partition, max(kafka_next_offset) FROM {table}"
        " WHERE kafka_partition IN {partitions:Array(UInt32)} GROUP BY kafka_partition",
        {"partitions": partitions},
    )
    return {int(partition): int(offset) for partition, offset in rows}


def fresh(batch: Sequence[Delivery], next_offset: dict[int, int]) -> list[Delivery]:
    """The deliveries at or past their partition's mark: not yet counted."""
    return [d for d in batch if d.offset >= next_offset.get(d.partition, 0)]


class Placed(Protocol):
    """Anything read from a Kafka place: a delivery, a raw message."""

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


def marks(batch: Sequence[Placed]) -> dict[int, int]:
    """The mark a write of `batch` leaves: per partition, one past its last offset."""
    out: dict[int, int] = {}
    for d in batch:
        out[d.partition] = max(out.get(d.partition, 0), d.offset + 1)
    return out
