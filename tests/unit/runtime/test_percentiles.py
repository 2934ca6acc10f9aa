"""Nearest-rank percentiles, the one definition behind every figure the bench reports."""

from __future__ import annotations

from runtime.percentiles import percentiles


def test_percentiles() -> None:
    assert percentiles([float(v) for v in range(1, 101)]) == [51.0, 96.0, 100.0]
    assert percentiles([]) == [0.0, 0.0, 0.0]
