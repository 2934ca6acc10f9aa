"""The consumer group's lag as the probe computes it (processors.worker.lag)."""

from __future__ import annotations

from processors.worker.lag import lag_of


def test_lag_is_end_minus_commit_or_minus_earliest_when_never_committed() -> None:
    end = {("t", 0): 100, ("t", 1): 50, ("t", 2): 7}
    assert lag_of(end, {("t", 0): 90, ("t", 2): 9}, {("t", 1): 20}) == {
        ("t", 0): 10,
        ("t", 1): 30,
        ("t", 2): 0,  # a commit past the end (a truncated log) is no lag, not a negative one
    }
