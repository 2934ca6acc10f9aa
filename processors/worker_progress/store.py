"""The worker's progress per partition: its boundary, kept in ClickHouse or, for tests, in memory.

Beside each partition's first offset not written yet it keeps a receipt time
(`received_through`): every event of the partition the collector received before it is written
by every processor (processors.worker_progress.receipts says how such a time is known). The
minimum over partitions is how complete the numbers are (`complete_through`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from processors.storage.clickhouse import ClickHouse
from processors.windows import EPOCH, as_utc

TABLE = "worker_progress"
COLUMNS = ("topic", "kafka_partition", "next_offset", "received_through")


class WorkerProgress(Protocol):
    def first_unwritten(self, partitions: Iterable[int]) -> dict[int, int]:
        """Per partition: the first offset not written yet; absent if nothing was written."""
        ...

    def record(
        self, next_offsets: Mapping[int, int], received_through: Mapping[int, datetime]
    ) -> None:
        """Called once everything before `next_offsets` (per partition) is written, and with
        it every event received before `received_through` (per partition; a partition absent
        there learnt no new time, e.g. all its messages were rejected)."""
        ...


class ClickHouseWorkerProgress:
    """Progress rows in `worker_progress`. Merges keep, per partition, the row with the furthest
    offset; so that row also holds the furthest time, each row carries the furthest time known
    for its partition (read back once per partition, then kept here)."""

    def __init__(self, clickhouse: ClickHouse, topic: str) -> None:
        self._ch = clickhouse
        self._topic = topic
        self._through: dict[int, datetime] = {}
        # batches and the caught-up probe record from two threads
        self._lock = threading.Lock()

    def first_unwritten(self, partitions: Iterable[int]) -> dict[int, int]:
        furthest = _furthest(self._ch, "next_offset", self._topic, partitions)
        return {partition: int(offset) for partition, offset in furthest.items()}

    def record(
        self, next_offsets: Mapping[int, int], received_through: Mapping[int, datetime]
    ) -> None:
        if not next_offsets:
            return
        with self._lock:
            self._learn([p for p in next_offsets if p not in self._through])
            rows = []
            for partition, offset in sorted(next_offsets.items()):
                through = max(self._through[partition], received_through.get(partition, EPOCH))
                self._through[partition] = through
                rows.append([self._topic, partition, offset, through])
            self._ch.insert(TABLE, rows, COLUMNS)

    def _learn(self, partitions: list[int]) -> None:
        """The furthest time already stored for `partitions` (EPOCH: none)."""
        if partitions:
            stored = _furthest(self._ch, "received_through", self._topic, partitions)
            self._through.update({p: as_utc(stored.get(p, EPOCH)) for p in partitions})


class InMemoryWorkerProgress:
    """For unit tests: the same contract, kept in dicts."""

    def __init__(self) -> None:
        self.written: dict[int, int] = {}
        self.through: dict[int, datetime] = {}

    def first_unwritten(self, partitions: Iterable[int]) -> dict[int, int]:
        return {p: self.written[p] for p in set(partitions) if p in self.written}

    def record(
        self, next_offsets: Mapping[int, int], received_through: Mapping[int, datetime]
    ) -> None:
        for partition, offset in next_offsets.items():
            self.written[partition] = max(self.written.get(partition, 0), offset)
            known = self.through.get(partition, EPOCH)
            self.through[partition] = max(known, received_through.get(partition, EPOCH))


def complete_through(clickhouse: ClickHouse, topic: str, partitions: int) -> datetime | None:
    """The receipt time before which every event of `topic` (partitions 0 to `partitions` - 1)
    is written by every processor: the earliest of the partitions' furthest times. None while
    a partition has no time yet (no row, or only rows from before the column: the epoch)."""
    furthest = _furthest(clickhouse, "received_through", topic, range(partitions))
    known = [through for through in map(as_utc, furthest.values()) if through > EPOCH]
    return min(known) if known and len(known) == partitions else None


def _furthest(
    clickhouse: ClickHouse, column: str, topic: str, partitions: Iterable[int]
) -> dict[int, Any]:
    """Per partition of `partitions` that has rows: the greatest value of `column`. One small
    query: rows not merged yet are read too, so merges change no answer."""
    rows = clickhouse.query(
        f"SELECT kafka_partition, max({column}) FROM {TABLE}"
        " WHERE topic = {topic:String} AND kafka_partition IN {partitions:Array(UInt32)}"
        " GROUP BY kafka_partition",
        {"topic": topic, "partitions": sorted(set(partitions))},
    )
    return {int(partition): value for partition, value in rows}
