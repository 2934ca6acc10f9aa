"""Which offsets a batch lacks, given where each partition was left (worker_progress.gaps)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.worker_progress.gaps import missing_ranges


def test_a_batch_that_continues_where_its_partition_was_left_lacks_nothing() -> None:
    assert missing_ranges([(0, 10), (0, 11), (1, 3)], {0: 10, 1: 3}) == []


def test_a_batch_that_begins_past_that_point_lacks_the_offsets_between() -> None:
    assert missing_ranges([(0, 14), (0, 15)], {0: 10}) == [(0, 10, 14)]


def test_offsets_skipped_inside_a_batch_are_missing_too() -> None:
    assert missing_ranges([(2, 5), (2, 9), (2, 6)], {2: 5}) == [(2, 7, 9)]


def test_a_replayed_batch_lacks_nothing() -> None:
    """Offsets before the point were written already: a redelivery, not a hole."""
    assert missing_ranges([(0, 3), (0, 4)], {0: 10}) == []


def test_a_partition_never_written_has_no_past_to_miss() -> None:
    assert missing_ranges([(4, 100), (4, 102)], {}) == []


@given(
    start=st.integers(0, 1000),
    offsets=st.sets(st.integers(0, 1200), min_size=1, max_size=60),
)
def test_the_batch_and_its_missing_ranges_cover_everything_from_the_point(
    start: int, offsets: set[int]
) -> None:
    ranges = missing_ranges([(0, o) for o in offsets], {0: start})
    filled = {o for _, a, b in ranges for o in range(a, b)}
    assert not filled & offsets
    assert filled | {o for o in offsets if o >= start} == set(range(start, max(offsets) + 1))
