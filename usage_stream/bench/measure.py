"""What each phase measures, as plain numbers: rates, CPU, lag and how it moved."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from usage_stream.bench.offsets import OffsetSample


@dataclass(frozen=True)
class CpuWindow:
    """CPU seconds each process spent between two moments."""

    seconds: dict[str, float]

    @classmethod
    def between(cls, before: dict[str, float], after: dict[str, float]) -> CpuWindow:
        return cls({name: round(after[name] - before.get(name, 0.0), 3) for name in after})

    def of(self, *prefixes: str) -> float:
        """The CPU of every process whose name starts with one of `prefixes`."""
        return sum(s for name, s in self.seconds.items() if name.startswith(prefixes))


def per_second(events: float, seconds: float) -> float:
    return events / seconds if seconds > 0 else 0.0


def consumed_rate(
    samples: Sequence[tuple[OffsetSample, dict[str, float]]], total: int, high: float = 0.9
) -> tuple[float, float, CpuWindow, int]:
    """Steady-state consumption, from the first commit (the consumer has joined its group,
    fetched and written a batch: start-up is behind it) to the first reading at or past `high`
    of `total`, or the last reading if time ran out first. The worker sends its very last
    commit only on its commit timer once the topic is drained, so that tail stays outside too.
    Returns (events/s, seconds, CPU over that window, events in it)."""
    if not samples:
        return 0.0, 0.0, CpuWindow({}), 0
    start = next((s for s in samples if s[0].committed > 0), samples[0])
    end = next((s for s in samples if s[0].committed >= high * total), samples[-1])
    if end[0].at <= start[0].at:
        # a topic read in one go (a tiny one): the whole run it is, start-up and all
        start = samples[0]
    if end[0].at <= start[0].at:
        return 0.0, 0.0, CpuWindow({}), 0
    seconds = end[0].at - start[0].at
    events = end[0].committed - start[0].committed
    return per_second(events, seconds), seconds, CpuWindow.between(start[1], end[1]), events


def lag_slope(samples: Sequence[OffsetSample]) -> float:
    """Least-squares growth of the consumer lag in messages per second (0 for < 2 samples)."""
    if len(samples) < 2:
        return 0.0
    xs = [s.at for s in samples]
    ys = [float(s.lag) for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
