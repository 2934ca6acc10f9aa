"""Reading quantities: one meter over [from, to), in windows of any IANA zone, exact.

Windows are cut at query time from per-minute rows, so day and month boundaries are right in
any zone (including half-hour offsets). Rows of events that arrived after their billing period
became final are kept apart: `quantity` is the invoiced number, `adjusted_quantity` adds them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from processors.metering.calendar import is_final
from processors.metering.fold import SCALE, TABLE
from processors.metering.held_query import Asked, HeldWindow, query_held
from processors.storage.clickhouse import ClickHouse
from processors.windows import (
    Window,
    to_millisecond,
    to_minute,
    unix_time,
    window_end,
    window_start_sql,
)
from schemas.config import Billing
from schemas.meters import HELD, Aggregation, Meter


def _measure(aggregation: Aggregation, condition: str) -> str:
    """The aggregate of the meter's rows that satisfy `condition`."""
    return {
        Aggregation.COUNT: f"toDecimal128(sumIf(events, {condition}), 9)",
        Aggregation.SUM: f"sumIf(value_sum, {condition})",
        Aggregation.AVG: f"sumIf(value_sum, {condition})",  # divided by the events, below
        Aggregation.MIN: f"minIf(value_min, {condition})",
        Aggregation.MAX: f"maxIf(value_max, {condition})",
        Aggregation.UNIQUE_COUNT: f"toDecimal128(uniqExactArrayIf(uniq_values, {condition}), 9)",
        Aggregation.LATEST: "argMaxIf(latest_value, (latest_at, latest_id),"
        f" latest_value IS NOT NULL AND {condition})",
    }[aggregation]


# One window of one meter's quantities, as the usage API answers it.
class UsageWindow(BaseModel):
    window_start: str
    window_end: str
    customer: str
    groups: dict[str, str]
    quantity: str | None
    adjusted_quantity: str | None
    # held meters: the last level held to the end of the window (quantity is held to now)
    projected_quantity: str | None = None
    events: int
    late_events: int
    skipped_events: int
    # stored at receipt: their time was too far in the future (the collector said so too)
    clamped_events: int = 0
    # seats: removals that would have taken the total below zero, clamped there; the first one
    below_zero_events: int = 0
    first_below_zero_at: str | None = None
    final: bool


def _text(value: Decimal | None) -> str | None:
    """Decimals as strings, so no JSON parser rounds a billed quantity; trailing zeros cut."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def _average(total: Decimal | None, events: int) -> Decimal | None:
    """An avg meter's quantity: the exact mean, rounded half-even to the stored scale."""
    if total is None or events == 0:
        return None
    with localcontext(prec=80):
        return (Decimal(total) / events).quantize(SCALE, ROUND_HALF_EVEN)


def query_usage(
    clickhouse: ClickHouse,
    tenant: str,
    meter: Meter,
    billing: Billing,
    start: datetime,
    to: datetime,
    window: Window = Window.TOTAL,
    zone: ZoneInfo | None = None,
    customers: list[str] | None = None,
    group_by: list[str] | None = None,
    by_customer: bool = True,
    limit: int | None = None,
    offset: int = 0,
    now: datetime | None = None,
    complete_through: datetime | None = None,
) -> list[UsageWindow]:
    """`now`: held quantities are held up to it (default: the clock); `complete_through`: the
    receipt time through which every event is folded, which decides `final`."""
    zone = zone or ZoneInfo("UTC")
    now = to_millisecond(now or datetime.now(UTC))  # what held quantities are held up to
    on_grid(meter, start, to)
    start, to = start.astimezone(UTC), to.astimezone(UTC)
    group_by = group_by or []
    unknown = [g for g in group_by if g not in meter.group_by]
    if unknown:
        raise ValueError(f"meter {meter.name} cannot group by {unknown}; it has {meter.group_by}")
    if meter.aggregation in HELD:
        asked = Asked(start, to, window, zone, customers, group_by, by_customer)
        found = query_held(clickhouse, tenant, meter, billing, asked, now)
        return [_answer(row, billing, complete_through) for row in found[offset:][:limit]]
    keys = [f"groups[{{g{i}:String}}]" for i in range(len(group_by))]
    customer = "customer" if by_customer else "''"
    where = "tenant = {tenant:String} AND meter = {meter:String}"
    where += " AND minute >= {start:DateTime('UTC')} AND minute < {to:DateTime('UTC')}"
    if customers:
        where += " AND customer IN {customers:Array(String)}"
    sql = (
        f"SELECT {window_start_sql(window)} AS w, {customer} AS c, [{', '.join(keys)}] AS g,"
        f" {_measure(meter.aggregation, 'adjustment = 0')} AS q,"
        f" {_measure(meter.aggregation, '1')} AS aq,"
        " sum(events), sumIf(events, adjustment = 1), sum(skipped), sum(clamped)"
        f" FROM {TABLE} WHERE {where} GROUP BY w, c, g ORDER BY w, c, g"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
    parameters: dict[str, Any] = {
        "tenant": tenant,
        "meter": meter.name,
        "start": start,
        "to": to,
        "tz": zone.key,
        "customers": customers or [],
        **{f"g{i}": name for i, name in enumerate(group_by)},
    }
    rows = []
    for w, c, g, q, aq, events, late, skipped, clamped in clickhouse.query(sql, parameters):
        if meter.aggregation is Aggregation.AVG:
            q, aq = _average(q, int(events) - int(late)), _average(aq, int(events))
        opened = unix_time(w)
        window_start = max(opened, start)
        end = min(window_end(opened, window, zone, to), to)
        rows.append(
            UsageWindow(
                window_start=window_start.isoformat(),
                window_end=end.isoformat(),
                customer=c,
                groups=dict(zip(group_by, g, strict=True)),
                quantity=_text(q),
                adjusted_quantity=_text(aq),
                events=int(events),
                late_events=int(late),
                skipped_events=int(skipped),
                clamped_events=int(clamped),
                final=is_final(end, billing, complete_through),
            )
        )
    return rows


def on_grid(meter: Meter, start: datetime, to: datetime) -> None:
    """Held meters keep each report to the millisecond and answer any such range exactly; the
    others keep one row per minute, so a range must start and end on a minute: never cut."""
    if meter.aggregation in HELD:
        for name, moment in (("from", start), ("to", to)):
            if moment.microsecond % 1000:
                raise ValueError(
                    f"`{name}` {moment.isoformat()}: meter {meter.name} is kept to the"
                    " millisecond; give a time with at most 3 decimals"
                )
        return
    for name, moment in (("from", start), ("to", to)):
        if moment != to_minute(moment):
            raise ValueError(
                f"`{name}` {moment.isoformat()}: meter {meter.name} ({meter.aggregation}) is kept"
                " per minute; give a time on a whole minute (seconds 00)"
            )


def _answer(row: HeldWindow, billing: Billing, complete_through: datetime | None) -> UsageWindow:
    below = row.first_below_zero_at
    return UsageWindow(
        window_start=row.start.isoformat(),
        window_end=row.end.isoformat(),
        customer=row.customer,
        groups=row.groups,
        quantity=_text(row.quantity),
        adjusted_quantity=_text(row.adjusted_quantity),
        projected_quantity=_text(row.projected_quantity),
        events=row.events,
        late_events=row.late_events,
        skipped_events=row.skipped_events,
        clamped_events=row.clamped_events,
        below_zero_events=row.below_zero_events,
        first_below_zero_at=below.isoformat() if below else None,
        final=is_final(row.end, billing, complete_through),
    )
