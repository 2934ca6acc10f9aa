"""The receipt times the worker's progress carries: before which time every event of a partition
is written.

Why a time can be known from offsets: the collector stamps `receivedAt`, then waits for Kafka's
ack for at most its produce timeout, so an event received at r is in its partition's log by
r + slack (the slack also covers the clocks of different hosts). Hence two ways to learn such a
time, both less the slack:
- a batch written up to an event received at R: every event received before R - slack sits at
  a smaller offset (`received_through`);
- a partition written up to the end offset the broker gave after T0: every event received
  before T0 - slack was in the log by T0 (`CaughtUp`, for partitions no batch moves).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from processors.model import Delivery
from processors.windows import EPOCH
from processors.worker_progress.store import WorkerProgress


def received_through(deliveries: Sequence[Delivery], slack: timedelta) -> dict[int, datetime]:
    """Per partition: its latest receipt time among `deliveries`, less `slack`. An event is in
    its partition's log within `slack` of its receipt, so once a batch is written up to the
    latest one, every event of that partition received before this time is written too. One
    pass, a comparison per event: it runs on every batch."""
    latest: dict[int, datetime] = {}
    for d in deliveries:
        received = d.event.received_at
        if d.partition not in latest or received > latest[d.partition]:
            latest[d.partition] = received
    return {partition: received - slack for partition, received in latest.items()}


class CaughtUp:
    """Receipt times for partitions written to their end, which no batch moves: an idle stream
    (or one partition of it) is complete up to the last time the broker was asked, less the
    slack, and that time keeps advancing while nothing arrives.

    Only the worker's own progress counts, not the group's commits: faust commits messages it
    skipped without handing them over (processors.worker_progress). A partition with events
    waiting (or a stopped worker, which asks nothing) keeps its older time. A time is recorded
    once it has moved by the slack: a finer step is within what the slack gives up already, and
    an idle worker writes a row per partition every slack seconds, not every probe.
    """

    def __init__(self, progress: WorkerProgress, slack: timedelta) -> None:
        self._progress = progress
        self._slack = slack
        self._recorded: dict[int, datetime] = {}

    def record(self, asked_at: datetime, end: Mapping[int, int]) -> None:
        """`end`: each partition's end offset, as the broker gave it after `asked_at`."""
        through = asked_at - self._slack
        due = [p for p in end if through - self._recorded.get(p, EPOCH) >= self._slack]
        if not due:
            return
        written = self._progress.first_unwritten(due)
        # a partition never written and still empty has nothing to write: it is complete too
        done = {p: written.get(p, 0) for p in due if written.get(p, 0) >= end[p]}
        self._progress.record(done, dict.fromkeys(done, through))
        self._recorded.update(dict.fromkeys(done, through))
