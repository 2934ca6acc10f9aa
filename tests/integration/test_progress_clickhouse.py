"""The worker's progress per partition, kept in ClickHouse (processors.worker.written)."""

from __future__ import annotations

import pytest

from processors.storage.clickhouse import ClickHouse
from processors.worker.written import ClickHouseWrittenOffsets

pytestmark = pytest.mark.integration


def test_progress_is_the_furthest_point_per_topic_and_partition(clickhouse: ClickHouse) -> None:
    events = ClickHouseWrittenOffsets(clickhouse, "events")
    other = ClickHouseWrittenOffsets(clickhouse, "events-v2")
    assert events.first_unwritten([0, 1]) == {}
    events.record({0: 10, 1: 4})
    events.record({0: 25})
    events.record({0: 7})  # a late writer of an older batch, e.g. after a rebalance
    other.record({0: 3})
    assert events.first_unwritten([0, 1, 2]) == {0: 25, 1: 4}
    assert events.first_unwritten([1]) == {1: 4}
    assert other.first_unwritten([0, 1]) == {0: 3}
    clickhouse.command("OPTIMIZE TABLE worker_progress FINAL")  # merges keep the furthest row
    assert events.first_unwritten([0, 1]) == {0: 25, 1: 4}
    assert clickhouse.query("SELECT count() FROM worker_progress")[0][0] == 3
