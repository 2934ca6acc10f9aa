"""How far the worker has written each partition of the events topic, kept beside the data.

faust can acknowledge, and so commit, a message an agent never saw: around a rebalance it skips
and acks the messages of the old generation still in its queues. The worker does not rely on
being handed every message: it remembers the first offset of each partition it has not written
yet, and a batch that begins past that point (or skips offsets) is completed from Kafka before
it is written (see processors.delivery.gaps).

Beside each offset it keeps a receipt time (`received_through`): every event of the partition
the collector received before it is written by every processor. The minimum over partitions is
how complete the numbers are (`complete_through`). Why a time can be known from offsets: the
collector stamps `receivedAt`, then waits for Kafka's ack for at most its produce timeout, so an
event received at r is in its partition's log by r + slack (the slack also covers the clocks of
different hosts). Hence two ways to learn such a time, both less the slack:
- a batch written up to an event received at R: every event received before R - slack sits at
  a smaller offset (`processors.model.received_through`);
- a partition written up to the end offset the broker gave after T0: every event received
  before T0 - slack was in the log by T0 (`CaughtUp`, for partitions no batch moves).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

from processors.storage.clickhouse import ClickHouse
from processors.windows import EPOCH, as_utc

TABLE = "worker_progress"
COLUMNS = ("topic", "kafka_partition", "next_offset", "received_through")


class WrittenOffsets(Protocol):
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


class ClickHouseWrittenOffsets:
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


class InMemoryWrittenOffsets:
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


class CaughtUp:
    """Receipt times for partitions written to their end, which no batch moves: an idle stream
    (or one partition of it) is complete up to the last time the broker was asked, less the
    slack, and that time keeps advancing while nothing arrives.

    Only the worker's own written offsets count, not the group's commits: faust commits
    messages it skipped without handing them over (see above). A partition with events waiting
    (or a stopped worker, which asks nothing) keeps its older time. A time is recorded once it
    has moved by the slack: a finer step is within what the slack gives up already, and an idle
    worker writes a row per partition every slack seconds, not every probe.
    """

    def __init__(self, written: WrittenOffsets, slack: timedelta) -> None:
        self._written = written
        self._slack = slack
        self._recorded: dict[int, datetime] = {}

    def record(self, asked_at: datetime, end: Mapping[int, int]) -> None:
        """`end`: each partition's end offset, as the broker gave it after `asked_at`."""
        through = asked_at - self._slack
        due = [p for p in end if through - self._recorded.get(p, EPOCH) >= self._slack]
        if not due:
            return
        written = self._written.first_unwritten(due)
        # a partition never written and still empty has nothing to write: it is complete too
        done = {p: written.get(p, 0) for p in due if written.get(p, 0) >= end[p]}
        self._written.record(done, dict.fromkeys(done, through))
        self._recorded.update(dict.fromkeys(done, through))


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
