"""Reading quantities: one meter over [from, to), in windows of any IANA zone, exact.

Windows are cut at query time from per-minute rows, so day and month boundaries are right in
any zone (including half-hour offsets). Rows of events that arrived after their billing period
became final are kept apart: `quantity` is the invoiced number, `adjusted_quantity` adds them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from processors.clickhouse import ClickHouse
from processors.metering import TABLE, final_at
from schemas.config import Billing
from schemas.meters import Aggregation, Meter


class Window(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    TOTAL = "total"


# the start of each row's window, as a Unix time; {tz:String} is the caller's zone
_WINDOW_START = {
    Window.MINUTE: "toUnixTimestamp(minute)",
    Window.HOUR: "toUnixTimestamp(toStartOfHour(minute, {tz:String}))",
    Window.DAY: "toUnixTimestamp(toStartOfDay(minute, {tz:String}))",
    Window.MONTH: "toUnixTimestamp(toDateTime(toStartOfMonth(minute, {tz:String}), {tz:String}))",
    Window.TOTAL: "toUnixTimestamp({start:DateTime('UTC')})",
}


def _measure(aggregation: Aggregation, condition: str) -> str:
    """The aggregate of the meter's rows that satisfy `condition`."""
    return {
        Aggregation.COUNT: f"toDecimal128(sumIf(events, {condition}), 9)",
        Aggregation.SUM: f"sumIf(value_sum, {condition})",
        Aggregation.MIN: f"minIf(value_min, {condition})",
        Aggregation.MAX: f"maxIf(value_max, {condition})",
        Aggregation.UNIQUE_COUNT: f"toDecimal128(uniqExactArrayIf(uniq_values, {condition}), 9)",
        Aggregation.LATEST: "argMaxIf(latest_value, (latest_at, latest_id),"
        f" latest_value IS NOT NULL AND {condition})",
    }[aggregation]


def window_end(start: datetime, window: Window, zone: ZoneInfo, to: datetime) -> datetime:
    if window is Window.TOTAL:
        return to
    if window is Window.MINUTE:
        return start + timedelta(minutes=1)
    if window is Window.HOUR:
        return start + timedelta(hours=1)
    local = start.astimezone(zone)
    if window is Window.DAY:
        following = (local.date() + timedelta(days=1)).timetuple()[:3]
    else:
        following = (local.year + local.month // 12, local.month % 12 + 1, 1)
    return datetime(*following, tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class UsageRow:
    window_start: datetime
    window_end: datetime
    customer: str
    groups: dict[str, str]
    quantity: Decimal | None
    adjusted_quantity: Decimal | None
    events: int
    late_events: int
    skipped: int
    final: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "window_start": self.window_start.isoformat(),
            "window_end": self.window_end.isoformat(),
            "customer": self.customer,
            "groups": self.groups,
            "quantity": _text(self.quantity),
            "adjusted_quantity": _text(self.adjusted_quantity),
            "events": self.events,
            "late_events": self.late_events,
            "skipped_events": self.skipped,
            "final": self.final,
        }


def _text(value: Decimal | None) -> str | None:
    """Decimals as strings, so no JSON parser rounds a billed quantity; trailing zeros cut."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def to_minute(moment: datetime) -> datetime:
    """Quantities are kept per minute: ranges are taken to the minute, rounded down, in UTC."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def is_final(end: datetime, billing: Billing, now: datetime) -> bool:
    """A window is final once the billing period of its last instant is."""
    return now >= final_at(end - timedelta(microseconds=1), billing)


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
) -> list[UsageRow]:
    zone = zone or ZoneInfo("UTC")
    now = now or datetime.now(UTC)
    start, to = to_minute(start), to_minute(to)
    group_by = group_by or []
    unknown = [g for g in group_by if g not in meter.group_by]
    if unknown:
        raise ValueError(f"meter {meter.name} cannot group by {unknown}; it has {meter.group_by}")
    keys = [f"groups[{{g{i}:String}}]" for i in range(len(group_by))]
    customer = "customer" if by_customer else "''"
    where = "tenant = {tenant:String} AND meter = {meter:String}"
    where += " AND minute >= {start:DateTime('UTC')} AND minute < {to:DateTime('UTC')}"
    if customers:
        where += " AND customer IN {customers:Array(String)}"
    sql = (
        f"SELECT {_WINDOW_START[window]} AS w, {customer} AS c, [{', '.join(keys)}] AS g,"
        f" {_measure(meter.aggregation, 'adjustment = 0')} AS q,"
        f" {_measure(meter.aggregation, '1')} AS aq,"
        " sum(events), sumIf(events, adjustment = 1), sum(skipped)"
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
    for w, c, g, q, aq, events, late, skipped in clickhouse.query(sql, parameters):
        opened = datetime.fromtimestamp(int(w), UTC)
        window_start = max(opened, start)
        end = min(window_end(opened, window, zone, to), to)
        rows.append(
            UsageRow(
                window_start=window_start,
                window_end=end,
                customer=c,
                groups=dict(zip(group_by, g, strict=True)),
                quantity=q,
                adjusted_quantity=aq,
                events=int(events),
                late_events=int(late),
                skipped=int(skipped),
                final=is_final(end, billing, now),
            )
        )
    return rows
