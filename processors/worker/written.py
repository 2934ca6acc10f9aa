"""How far the worker has written each partition of the events topic, kept beside the data.

faust can acknowledge, and so commit, a message an agent never saw: around a rebalance it skips
and acks the messages of the old generation still in its queues. The worker does not rely on
being handed every message: it remembers the first offset of each partition it has not written
yet, and a batch that begins past that point (or skips offsets) is completed from Kafka before
it is written (see processors.delivery.gaps).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from processors.storage.clickhouse import ClickHouse

TABLE = "worker_progress"


class WrittenOffsets(Protocol):
    def first_unwritten(self, partitions: Iterable[int]) -> dict[int, int]:
        """Per partition: the first offset not written yet; absent if nothing was written."""
        ...

    def record(self, next_offsets: Mapping[int, int]) -> None:
        """Called once everything before `next_offsets` (per partition) is written."""
        ...


class ClickHouseWrittenOffsets:
    def __init__(self, clickhouse: ClickHouse, topic: str) -> None:
        self._ch = clickhouse
        self._topic = topic

    def first_unwritten(self, partitions: Iterable[int]) -> dict[int, int]:
        rows = self._ch.query(
            f"SELECT kafka_partition, max(next_offset) FROM {TABLE}"
            " WHERE topic = {topic:String} AND kafka_partition IN {partitions:Array(UInt32)}"
            " GROUP BY kafka_partition",
            {"topic": self._topic, "partitions": sorted(set(partitions))},
        )
        return {int(partition): int(offset) for partition, offset in rows}

    def record(self, next_offsets: Mapping[int, int]) -> None:
        if next_offsets:
            rows = [[self._topic, p, o] for p, o in sorted(next_offsets.items())]
            self._ch.insert(TABLE, rows, ("topic", "kafka_partition", "next_offset"))


class InMemoryWrittenOffsets:
    def __init__(self) -> None:
        self.written: dict[int, int] = {}

    def first_unwritten(self, partitions: Iterable[int]) -> dict[int, int]:
        return {p: self.written[p] for p in set(partitions) if p in self.written}

    def record(self, next_offsets: Mapping[int, int]) -> None:
        for partition, offset in next_offsets.items():
            self.written[partition] = max(self.written.get(partition, 0), offset)
