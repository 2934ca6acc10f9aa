"""Percentiles of measured values, one definition for every figure the tools report."""

from __future__ import annotations

from collections.abc import Sequence


def percentiles(
    values: Sequence[float], points: tuple[float, ...] = (0.5, 0.95, 0.99)
) -> list[float]:
    """Nearest-rank percentiles of `values`; empty input gives zeros."""
    if not values:
        return [0.0 for _ in points]
    ordered = sorted(values)
    return [ordered[min(len(ordered) - 1, int(p * len(ordered)))] for p in points]
