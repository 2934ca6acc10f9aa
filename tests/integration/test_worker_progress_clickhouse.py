"""The worker's progress per partition, kept in ClickHouse (processors.worker_progress)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from processors.storage.clickhouse import ClickHouse
from processors.worker_progress.receipts import CaughtUp
from processors.worker_progress.store import ClickHouseWorkerProgress, complete_through

pytestmark = pytest.mark.integration
T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_progress_is_the_furthest_point_per_topic_and_partition(clickhouse: ClickHouse) -> None:
    events = ClickHouseWorkerProgress(clickhouse, "events")
    other = ClickHouseWorkerProgress(clickhouse, "events-v2")
    assert events.first_unwritten([0, 1]) == {}
    events.record({0: 10, 1: 4}, {})
    events.record({0: 25}, {})
    events.record({0: 7}, {})  # a late writer of an older batch, e.g. after a rebalance
    other.record({0: 3}, {})
    assert events.first_unwritten([0, 1, 2]) == {0: 25, 1: 4}
    assert events.first_unwritten([1]) == {1: 4}
    assert other.first_unwritten([0, 1]) == {0: 3}
    clickhouse.command("OPTIMIZE TABLE worker_progress FINAL")  # merges keep the furthest row
    assert events.first_unwritten([0, 1]) == {0: 25, 1: 4}
    assert clickhouse.query("SELECT count() FROM worker_progress")[0][0] == 3


def test_complete_through_is_the_earliest_partitions_furthest_time(clickhouse: ClickHouse) -> None:
    events = ClickHouseWorkerProgress(clickhouse, "events")
    assert complete_through(clickhouse, "events", 2) is None  # no rows
    events.record({0: 10, 1: 4}, {0: T})
    assert complete_through(clickhouse, "events", 2) is None  # 1: written, but no time known
    events.record({1: 6}, {1: T - timedelta(seconds=40)})
    events.record({0: 12, 1: 9}, {0: T + timedelta(seconds=5), 1: T - timedelta(seconds=20)})
    assert complete_through(clickhouse, "events", 2) == T - timedelta(seconds=20)
    assert complete_through(clickhouse, "events", 1) == T + timedelta(seconds=5)
    assert complete_through(clickhouse, "events", 3) is None  # 2 was never written
    assert complete_through(clickhouse, "events-v2", 2) is None  # another topic's rows are not
    assert complete_through(clickhouse, "events", 0) is None
    found = complete_through(clickhouse, "events", 2)
    assert found is not None and found.tzinfo is not None


def test_merges_keep_the_furthest_time_even_when_it_came_with_an_earlier_offset(
    clickhouse: ClickHouse,
) -> None:
    """Merges keep the row with the furthest offset: that row carries the furthest time known,
    in this process and in the next one."""
    events = ClickHouseWorkerProgress(clickhouse, "events")
    events.record({0: 10}, {0: T})  # e.g. the partition idle, complete until T
    events.record({0: 15}, {0: T - timedelta(seconds=3)})  # then a batch of late producers
    restarted = ClickHouseWorkerProgress(clickhouse, "events")
    restarted.record({0: 20}, {0: T - timedelta(seconds=2)})
    restarted.record({1: 1}, {1: T + timedelta(hours=1)})
    clickhouse.command("OPTIMIZE TABLE worker_progress FINAL")
    assert clickhouse.query("SELECT count() FROM worker_progress")[0][0] == 2
    assert events.first_unwritten([0]) == {0: 20}
    assert complete_through(clickhouse, "events", 2) == T


def test_partitions_written_to_their_end_advance_with_the_clock(clickhouse: ClickHouse) -> None:
    events = ClickHouseWorkerProgress(clickhouse, "events")
    events.record({0: 10}, {0: T - timedelta(hours=1)})
    caught_up = CaughtUp(events, timedelta(seconds=30))
    caught_up.record(T, {0: 10, 1: 0})  # 1 never had an event
    assert complete_through(clickhouse, "events", 2) == T - timedelta(seconds=30)
    caught_up.record(T + timedelta(minutes=5), {0: 12, 1: 0})  # 0 has events waiting
    assert complete_through(clickhouse, "events", 2) == T - timedelta(seconds=30)
    assert events.first_unwritten([0, 1]) == {0: 10, 1: 0}
