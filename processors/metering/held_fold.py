"""Quantities held over time (time_weighted GB-hours, seats seat-days), folded from reports.

A reading holds from its event time until the next reading of the same customer and groups (or
until it expires); a seats meter holds the running total of its changes, never below zero. The
quantity of a window is Σ level x time held inside it, in the meter's `per` unit. Which reports
an instant sees depends on the view:
- `quantity` (the invoice): an instant of billing period P sees every report received before P
  became final, whatever time it is for. A seat added on Oct 5 but reported in November (October
  final by then) is part of November's seats, never of October's;
- `adjusted_quantity`: every report;
- both are held up to now; `projected` holds the invoice view's last level to the end of the
  range, the figure a billing system may show as "expected this period".

Pure: no I/O. processors.metering.held_query reads the reports and cuts the windows.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from itertools import pairwise
from typing import NamedTuple

from processors.metering.fold import SCALE
from schemas.meters import Aggregation, Meter, Per

MILLISECOND = timedelta(milliseconds=1)
ZERO = Decimal(0)


class Report(NamedTuple):
    """One reading, or one seat change (±n), with when it was received."""

    at: datetime
    id: str
    value: Decimal
    received: datetime


class Level(NamedTuple):
    """A level held from `since` until the next level, or until `expires` if that is sooner."""

    since: datetime
    value: Decimal
    expires: datetime | None


@dataclass(frozen=True)
class Piece:
    """A stretch of the range inside one window and one billing period."""

    start: datetime
    end: datetime
    window: int
    period: int


@dataclass
class Held:
    """One window's figures; None where nothing was held in that view."""

    quantity: Decimal | None = None
    adjusted_quantity: Decimal | None = None
    projected_quantity: Decimal | None = None
    below_zero_events: int = 0  # removals that would have taken the seats below zero
    first_below_zero_at: datetime | None = None


def fold_levels(
    meter: Meter, reports: Sequence[Report], start: datetime
) -> tuple[list[Level], list[datetime]]:
    """The levels held from `start` on, from reports sorted by (time, id); and, for seats, the
    times of the removals that tried to take the total below zero (clamped there)."""
    seats = meter.aggregation is Aggregation.SEATS
    expiry = meter.expires_after
    level = ZERO
    levels = [Level(start, ZERO, None)] if seats else []
    below: list[datetime] = []
    for report in reports:
        if seats:
            level += report.value
            if level < 0:
                below.append(report.at)
                level = ZERO
        else:
            level = report.value
        since = max(report.at, start)
        held = Level(since, level, report.at + expiry if expiry else None)
        if levels and levels[-1].since == since:
            levels[-1] = held
        else:
            levels.append(held)
    return levels, below


def integrate(levels: Sequence[Level], pieces: Sequence[Piece]) -> dict[tuple[int, int], Decimal]:
    """Σ level x milliseconds held inside each piece, by (window, period)."""
    starts = [p.start for p in pieces]
    totals: dict[tuple[int, int], Decimal] = {}
    for i, (since, value, expires) in enumerate(levels):
        until = levels[i + 1].since if i + 1 < len(levels) else pieces[-1].end if pieces else since
        if expires is not None:
            until = min(until, expires)
        if until <= since:
            continue
        p = max(bisect_right(starts, since) - 1, 0)
        while p < len(pieces) and pieces[p].start < until:
            piece = pieces[p]
            overlap = min(until, piece.end) - max(since, piece.start)
            if overlap > timedelta(0):
                key = (piece.window, piece.period)
                totals[key] = totals.get(key, ZERO) + value * (overlap // MILLISECOND)
            p += 1
    return totals


def in_units(
    totals: dict[tuple[int, int], Decimal], per: Per, periods: Sequence[tuple[datetime, datetime]]
) -> dict[int, Decimal]:
    """Value-milliseconds as the meter's unit per window: `per` seconds, or for `period` the
    share of each billing period (a level held through a whole period is exactly that level)."""
    out: dict[int, Decimal] = {}
    with localcontext(prec=80):
        for (window, period), total in totals.items():
            start, end = periods[period]
            unit = per.seconds * 1000 if per.seconds else (end - start) // MILLISECOND
            out[window] = out.get(window, ZERO) + total / unit
        return {w: q.quantize(SCALE, ROUND_HALF_EVEN) for w, q in out.items()}


def cut(
    start: datetime,
    to: datetime,
    windows: Sequence[tuple[datetime, datetime]],
    periods: Sequence[tuple[datetime, datetime]],
    also: Sequence[datetime] = (),
) -> list[Piece]:
    """[start, to) cut at every window and billing period boundary, and at `also`."""
    bounds = {start, to, *(t for t in also if start < t < to)}
    bounds |= {t for w in windows for t in w if start < t < to}
    bounds |= {t for p in periods for t in p if start < t < to}
    ordered = sorted(bounds)
    window_starts = [w[0] for w in windows]
    period_starts = [p[0] for p in periods]
    return [
        Piece(a, b, bisect_right(window_starts, a) - 1, bisect_right(period_starts, a) - 1)
        for a, b in pairwise(ordered)
    ]


def held_quantities(
    meter: Meter,
    reports: Sequence[Report],
    windows: Sequence[tuple[datetime, datetime]],
    periods: Sequence[tuple[datetime, datetime]],
    final_at: Callable[[int], datetime],
    now: datetime,
) -> dict[int, Held]:
    """The figures of each window (by index) of one series. `windows` are disjoint and sorted,
    already cut to the range asked; `periods` are the billing periods covering them, and
    `final_at(i)` the moment period i becomes final."""
    assert meter.per is not None  # the meter's validation requires it
    if not windows:
        return {}
    start, to = windows[0][0], windows[-1][1]
    ordered = sorted(reports, key=lambda r: (r.at, r.id))
    pieces = cut(start, to, windows, periods, [now])
    to_date = [p for p in pieces if p.end <= now]
    every, below = fold_levels(meter, ordered, start)
    invoice: dict[tuple[int, int], Decimal] = {}
    projected: dict[tuple[int, int], Decimal] = {}
    seen: dict[int, list[Level]] = {}
    for period in sorted({p.period for p in pieces}):
        closes = final_at(period)
        visible = [r for r in ordered if r.received < closes]
        levels = seen.get(len(visible))  # visibility only grows with the period
        if levels is None:
            levels = seen[len(visible)] = fold_levels(meter, visible, start)[0]
        mine = [p for p in pieces if p.period == period]
        invoice |= integrate(levels, [p for p in mine if p.end <= now])
        projected |= integrate(levels, mine)
    out: dict[int, Held] = {}

    def row(w: int) -> Held:
        return out.setdefault(w, Held())

    for w, q in in_units(invoice, meter.per, periods).items():
        row(w).quantity = q
    for w, q in in_units(integrate(every, to_date), meter.per, periods).items():
        row(w).adjusted_quantity = q
    for w, q in in_units(projected, meter.per, periods).items():
        row(w).projected_quantity = q
    window_starts = [w[0] for w in windows]
    for at in below:
        if start <= at < to:
            found = row(bisect_right(window_starts, at) - 1)
            found.below_zero_events += 1
            if found.first_below_zero_at is None:
                found.first_below_zero_at = at
    return out
