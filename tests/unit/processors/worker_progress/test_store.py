"""The worker's progress in memory, as unit tests use it (processors.worker_progress.store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from processors.windows import EPOCH
from processors.worker_progress.store import InMemoryWorkerProgress

T = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_progress_only_moves_forward() -> None:
    progress = InMemoryWorkerProgress()
    progress.record({0: 10, 1: 4}, {})
    progress.record({0: 7}, {})  # a late writer of an older batch
    assert progress.first_unwritten([0, 1, 2]) == {0: 10, 1: 4}


def test_in_memory_times_only_move_forward_and_a_partition_without_one_keeps_its_own() -> None:
    offsets = InMemoryWorkerProgress()
    offsets.record({0: 10, 1: 4}, {0: T, 1: T})
    offsets.record({0: 12, 1: 6}, {0: T - timedelta(seconds=1)})  # 1: all its messages rejected
    offsets.record({0: 7}, {0: T + timedelta(seconds=9)})  # a late writer of an older batch
    assert offsets.first_unwritten([0, 1]) == {0: 12, 1: 6}
    assert offsets.through == {0: T + timedelta(seconds=9), 1: T}
    offsets.record({2: 3}, {})
    assert offsets.through[2] == EPOCH  # written, but nothing known of its receipts
