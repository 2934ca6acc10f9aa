"""The worker's progress per partition, kept in ClickHouse (processors.progress)."""

from __future__ import annotations

import pytest

from processors.clickhouse import ClickHouse
from processors.progress import ClickHouseProgress

pytestmark = pytest.mark.integration


def test_progress_is_the_furthest_point_per_topic_and_partition(clickhouse: ClickHouse) -> None:
    events = ClickHouseProgress(clickhouse, "events")
    other = ClickHouseProgress(clickhouse, "events-v2")
    assert events.next_offsets([0, 1]) == {}
    events.record({0: 10, 1: 4})
    events.record({0: 25})
    events.record({0: 7})  # a late writer of an older batch, e.g. after a rebalance
    other.record({0: 3})
    assert events.next_offsets([0, 1, 2]) == {0: 25, 1: 4}
    assert events.next_offsets([1]) == {1: 4}
    assert other.next_offsets([0, 1]) == {0: 3}
    clickhouse.command("OPTIMIZE TABLE worker_progress FINAL")  # merges keep the furthest row
    assert events.next_offsets([0, 1]) == {0: 25, 1: 4}
    assert clickhouse.query("SELECT count() FROM worker_progress")[0][0] == 3
