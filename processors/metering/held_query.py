"""Reading a held meter (time_weighted, seats): its reports from meter_minutes, folded per window.

Stored rows keep every report with its receipt time (meter_minutes.points, points_received), so
a late report changes exactly the interval it falls in and the invoice of exactly the periods
that were open when it arrived (processors.metering.held_fold). The level before the range is
carried in from the rows before it: for time_weighted the last on-time reading and the late
ones (few), for seats every change, since a total clamped at zero must be folded in order.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from processors.metering.calendar import periods_between
from processors.metering.fold import TABLE
from processors.metering.held_fold import Report, held_quantities
from processors.storage.clickhouse import ClickHouse
from processors.windows import EPOCH, Window, as_utc, to_minute, windows_between
from schemas.config import Billing
from schemas.meters import Aggregation, Meter

Series = tuple[str, tuple[tuple[str, str], ...]]  # (customer, groups)


@dataclass(frozen=True)
class Asked:
    """What a usage query asks: a range, its windows, who and how grouped."""

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
    projected_quantity: Decimal | None = None
    events: int = 0
    late_events: int = 0
    skipped_events: int = 0
    clamped_events: int = 0
    below_zero_events: int = 0
    first_below_zero_at: datetime | None = None


@dataclass
class _Found:
    """One series' reports (those before the range included) and what its rows counted."""

    reports: list[Report] = field(default_factory=list)
    counted: list[tuple[datetime, bool]] = field(default_factory=list)  # (at, late) in range
    minutes: list[tuple[datetime, int, int]] = field(default_factory=list)  # skipped, clamped


def query_held(
    clickhouse: ClickHouse, tenant: str, meter: Meter, billing: Billing, asked: Asked, now: datetime
) -> list[HeldWindow]:
    found = _read(clickhouse, tenant, meter, asked)
    cut = [
        (max(opened, asked.start), min(end, asked.to))
        for opened, end in windows_between(asked.start, asked.to, asked.window, asked.zone)
    ]
    periods = periods_between(asked.start, asked.to, billing)
    closes = [end + billing.grace for _, end in periods]
    starts = [w[0] for w in cut]
    out: dict[tuple[int, str, tuple[str, ...]], HeldWindow] = {}

    def row(w: int, series: Series) -> HeldWindow:
        customer, groups = series
        customer = customer if asked.by_customer else ""
        values = dict(groups)
        shown = tuple(values.get(g, "") for g in asked.group_by)
        key = (w, customer, shown)
        if key not in out:
            out[key] = HeldWindow(
                cut[w][0], cut[w][1], customer, dict(zip(asked.group_by, shown, strict=True))
            )
        return out[key]

    for series, f in found.items():
        for w, h in held_quantities(
            meter, f.reports, cut, periods, closes.__getitem__, now
        ).items():
            r = row(w, series)
            r.quantity = _add(r.quantity, h.quantity)
            r.adjusted_quantity = _add(r.adjusted_quantity, h.adjusted_quantity)
            r.projected_quantity = _add(r.projected_quantity, h.projected_quantity)
            r.below_zero_events += h.below_zero_events
            if h.first_below_zero_at is not None and (
                r.first_below_zero_at is None or h.first_below_zero_at < r.first_below_zero_at
            ):
                r.first_below_zero_at = h.first_below_zero_at
        for at, late in f.counted:
            r = row(bisect_right(starts, at) - 1, series)
            r.events += 1
            r.late_events += late
        for minute, skipped, clamped in f.minutes:
            r = row(max(bisect_right(starts, minute) - 1, 0), series)
            r.skipped_events += skipped
            r.clamped_events += clamped
    return [out[k] for k in sorted(out)]


def _add(a: Decimal | None, b: Decimal | None) -> Decimal | None:
    return a if b is None else b if a is None else a + b


def _reports(adjustment: int, points: Any, received: Any, written_at: datetime) -> list[Report]:
    """A row's reports. Rows from before receipt times were kept have none: an on-time report
    was seen by every period from its own, a late one is taken as received when written."""
    if len(received) != len(points):
        received = [written_at if adjustment else EPOCH] * len(points)
    return [
        Report(as_utc(at), str(id_), Decimal(value), as_utc(r))
        for (at, id_, value), r in zip(points, received, strict=True)
    ]


def _read(clickhouse: ClickHouse, tenant: str, meter: Meter, asked: Asked) -> dict[Series, _Found]:
    where = "tenant = {tenant:String} AND meter = {meter:String}"
    if asked.customers:
        where += " AND customer IN {customers:Array(String)}"
    parameters: dict[str, Any] = {
        "tenant": tenant,
        "meter": meter.name,
        "first": to_minute(asked.start),
        "to": asked.to,
        "customers": asked.customers or [],
    }
    series = "customer, mapKeys(groups), mapValues(groups)"
    found: dict[Series, _Found] = {}

    def of(customer: str, k: list[str], v: list[str]) -> _Found:
        return found.setdefault((customer, tuple(zip(k, v, strict=True))), _Found())

    before = where + " AND minute < {first:DateTime('UTC')}"
    if meter.aggregation is Aggregation.TIME_WEIGHTED:
        # the last on-time reading before the range is the only one of them that can still hold
        has = "latest_value IS NOT NULL AND adjustment = 0"
        for customer, k, v, (at, id_, value), n in clickhouse.query(
            f"SELECT {series}, argMaxIf((latest_at, latest_id, latest_value),"
            f" (latest_at, latest_id), {has}), countIf({has}) FROM {TABLE} WHERE {before}"
            " GROUP BY customer, mapKeys(groups), mapValues(groups)",
            parameters,
        ):
            if n:
                of(customer, k, v).reports.append(Report(as_utc(at), id_, Decimal(value), EPOCH))
        before += " AND adjustment = 1"
    for customer, k, v, adjustment, points, received, written_at in clickhouse.query(
        f"SELECT {series}, adjustment, points, points_received, written_at FROM {TABLE}"
        f" WHERE {before} AND notEmpty(points)",
        parameters,
    ):
        of(customer, k, v).reports += _reports(adjustment, points, received, as_utc(written_at))
    for (
        customer,
        k,
        v,
        minute,
        adjustment,
        skipped,
        clamped,
        points,
        received,
        written_at,
    ) in clickhouse.query(
        f"SELECT {series}, minute, adjustment, skipped, clamped, points, points_received,"
        f" written_at FROM {TABLE} WHERE {where} AND minute >= {{first:DateTime('UTC')}}"
        " AND minute < {to:DateTime64(3, 'UTC')}",
        parameters,
    ):
        f = of(customer, k, v)
        reports = _reports(adjustment, points, received, as_utc(written_at))
        f.reports += reports
        f.counted += [(r.at, bool(adjustment)) for r in reports if asked.start <= r.at < asked.to]
        if skipped or clamped:
            f.minutes.append((as_utc(minute), int(skipped), int(clamped)))
    return found
