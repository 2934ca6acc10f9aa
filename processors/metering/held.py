"""Quantities held over time: time_weighted (GB-hours) and seats (seat-days), cut at read time.

A reported value holds from its event time until the next report of the same customer and
groups; a seats meter holds the running total of its changes. The quantity of a window is
Σ value x seconds held inside it, in the meter's `per` unit. The stored rows keep every report
(meter_minutes.points), so a late report changes exactly the interval it falls in, and the
value before the range is carried in from the rows before it.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo

from processors.metering.fold import SCALE, TABLE
from processors.storage.clickhouse import ClickHouse
from processors.windows import Window, as_utc, windows_between
from schemas.meters import Aggregation, Meter

Point = tuple[datetime, str, Decimal]  # (event time, messageId, value or change)
Series = tuple[str, tuple[tuple[str, str], ...]]  # (customer, groups)
MILLISECOND = timedelta(milliseconds=1)


@dataclass(frozen=True)
class Asked:
    """What a usage query asks: a range in whole minutes, its windows, who and how grouped."""

    start: datetime
    to: datetime
    window: Window
    zone: ZoneInfo
    customers: list[str] | None
    group_by: list[str]
    by_customer: bool


@dataclass
class HeldWindow:
    start: datetime
    end: datetime
    customer: str
    groups: dict[str, str]
    quantity: Decimal | None = None
    adjusted_quantity: Decimal | None = None
    events: int = 0
    late_events: int = 0
    skipped_events: int = 0


@dataclass
class _Found:
    """One series' carried-in values and reports: on time only, and with the late ones."""

    carried: Decimal | None = None
    carried_all: Decimal | None = None
    points: list[Point] = field(default_factory=list)
    points_all: list[Point] = field(default_factory=list)
    # per minute: (events, late events, skipped)
    counts: list[tuple[datetime, int, int, int]] = field(default_factory=list)


def levels(
    meter: Meter, carried: Decimal | None, start: datetime, points: Iterable[Point]
) -> list[tuple[datetime, Decimal]]:
    """The value held from each change on: [(since, value)], from `start` if one is carried."""
    seats = meter.aggregation is Aggregation.SEATS
    # seats start from none held; a reported value holds only from its first report
    level = Decimal(0) if seats and carried is None else carried
    changes = [] if level is None else [(start, level)]
    for at, _, value in sorted(points, key=lambda p: (p[0], p[1])):
        level = (level or Decimal(0)) + value if seats else value
        changes.append((max(at, start), level))
    return changes


def held(
    changes: list[tuple[datetime, Decimal]],
    to: datetime,
    windows: list[tuple[datetime, datetime]],
    per_seconds: int,
) -> dict[int, Decimal]:
    """Σ value x milliseconds held inside each window (by index), in units of `per_seconds`."""
    starts = [w[0] for w in windows]
    totals: dict[int, Decimal] = {}
    with localcontext(prec=80):
        for i, (since, value) in enumerate(changes):
            until = changes[i + 1][0] if i + 1 < len(changes) else to
            if until <= since:
                continue
            w = max(bisect_right(starts, since) - 1, 0)
            while w < len(windows) and windows[w][0] < until:
                opened, end = windows[w]
                overlap = min(until, end) - max(since, opened)
                if overlap > timedelta(0):
                    ms = overlap // MILLISECOND
                    totals[w] = totals.get(w, Decimal(0)) + value * ms
                w += 1
        scale = Decimal(per_seconds * 1000)
        return {w: (t / scale).quantize(SCALE, ROUND_HALF_EVEN) for w, t in totals.items()}


def query_held(clickhouse: ClickHouse, tenant: str, meter: Meter, asked: Asked) -> list[HeldWindow]:
    assert meter.per is not None  # the meter's validation requires it
    found = _read(clickhouse, tenant, meter, asked)
    windows = windows_between(asked.start, asked.to, asked.window, asked.zone)
    out: dict[tuple[int, str, tuple[str, ...]], HeldWindow] = {}

    def row(w: int, series: Series) -> HeldWindow:
        customer, groups = series
        customer = customer if asked.by_customer else ""
        values = dict(groups)
        shown = tuple(values.get(g, "") for g in asked.group_by)
        key = (w, customer, shown)
        if key not in out:
            opened, end = windows[w]
            out[key] = HeldWindow(
                start=max(opened, asked.start),
                end=min(end, asked.to),
                customer=customer,
                groups=dict(zip(asked.group_by, shown, strict=True)),
            )
        return out[key]

    starts = [w[0] for w in windows]
    for series, f in found.items():
        on_time = levels(meter, f.carried, asked.start, f.points)
        every = levels(meter, f.carried_all, asked.start, f.points_all)
        for w, q in held(on_time, asked.to, windows, meter.per.seconds).items():
            r = row(w, series)
            r.quantity = q if r.quantity is None else r.quantity + q
        for w, q in held(every, asked.to, windows, meter.per.seconds).items():
            r = row(w, series)
            r.adjusted_quantity = q if r.adjusted_quantity is None else r.adjusted_quantity + q
        for minute, events, late, skipped in f.counts:
            r = row(max(bisect_right(starts, minute) - 1, 0), series)
            r.events += events
            r.late_events += late
            r.skipped_events += skipped
    return [out[k] for k in sorted(out)]


def _read(clickhouse: ClickHouse, tenant: str, meter: Meter, asked: Asked) -> dict[Series, _Found]:
    where = "tenant = {tenant:String} AND meter = {meter:String}"
    if asked.customers:
        where += " AND customer IN {customers:Array(String)}"
    parameters: dict[str, Any] = {
        "tenant": tenant,
        "meter": meter.name,
        "start": asked.start,
        "to": asked.to,
        "customers": asked.customers or [],
    }
    if meter.aggregation is Aggregation.TIME_WEIGHTED:  # the last report before the range
        has = "latest_value IS NOT NULL"
        carry = (
            f"argMaxIf(latest_value, (latest_at, latest_id), {has} AND adjustment = 0),"
            f" countIf({has} AND adjustment = 0), argMaxIf(latest_value, (latest_at, latest_id),"
            f" {has}), countIf({has})"
        )
    else:  # seats: every change before the range
        carry = "sumIf(value_sum, adjustment = 0), 1, sum(value_sum), 1"
    found: dict[Series, _Found] = {}
    for customer, k, v, on_time, n_on_time, every, n_every in clickhouse.query(
        f"SELECT customer, mapKeys(groups) AS k, mapValues(groups) AS v, {carry} FROM {TABLE}"
        f" WHERE {where} AND minute < {{start:DateTime('UTC')}} GROUP BY customer, k, v",
        parameters,
    ):
        f = found.setdefault((customer, tuple(zip(k, v, strict=True))), _Found())
        f.carried = Decimal(on_time) if n_on_time else None
        f.carried_all = Decimal(every) if n_every else None
    for customer, k, v, minute, adjustment, events, skipped, points in clickhouse.query(
        f"SELECT customer, mapKeys(groups), mapValues(groups), minute, adjustment, events,"
        f" skipped, points FROM {TABLE} WHERE {where} AND minute >= {{start:DateTime('UTC')}}"
        " AND minute < {to:DateTime('UTC')}",
        parameters,
    ):
        f = found.setdefault((customer, tuple(zip(k, v, strict=True))), _Found())
        reports = [(as_utc(at), str(id_), Decimal(value)) for at, id_, value in points]
        f.points_all += reports
        if not adjustment:
            f.points += reports
        late = int(events) if adjustment else 0
        f.counts.append((as_utc(minute), int(events), late, int(skipped)))
    return found
