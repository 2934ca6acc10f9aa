"""Time as the stored rows keep it: the epoch, whole minutes, and the windows queries cut.

Derived tables hold one row per minute; every window (an hour, a day or a month in any IANA
zone) is cut from those rows at query time, so zone boundaries are exact.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Window(StrEnum):
    """How a meter's quantities are cut: per minute, hour, day or month in the zone asked, or one
    total over the whole range."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    MONTH = "month"
    TOTAL = "total"


class FeatureWindow(StrEnum):
    """How feature counters are cut: per minute, hour or day in the zone asked, or one total over
    the whole range."""

    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    TOTAL = "total"


def window_start_sql(window: Window | FeatureWindow) -> str:
    """The start of each row's window as a Unix time, from a `minute` column; the query binds
    {tz:String}, the caller's zone, and {start:DateTime('UTC')}, the range's start."""
    return {
        "minute": "toUnixTimestamp(minute)",
        "hour": "toUnixTimestamp(toStartOfHour(minute, {tz:String}))",
        "day": "toUnixTimestamp(toStartOfDay(minute, {tz:String}))",
        "month": "toUnixTimestamp(toDateTime(toStartOfMonth(minute, {tz:String}), {tz:String}))",
        "total": "toUnixTimestamp({start:DateTime('UTC')})",
    }[window.value]


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


def window_floor(moment: datetime, window: Window, zone: ZoneInfo, start: datetime) -> datetime:
    """The start of the window holding `moment`, as `window_start_sql` cuts it."""
    if window is Window.TOTAL:
        return start
    if window is Window.MINUTE:
        return to_minute(moment)
    local = moment.astimezone(zone)
    if window is Window.HOUR:
        floor = local.replace(minute=0, second=0, microsecond=0)
    elif window is Window.DAY:
        floor = datetime(local.year, local.month, local.day, tzinfo=zone)
    else:
        floor = datetime(local.year, local.month, 1, tzinfo=zone)
    return floor.astimezone(UTC)


def windows_between(
    start: datetime, to: datetime, window: Window, zone: ZoneInfo
) -> list[tuple[datetime, datetime]]:
    """Every window overlapping [start, to), each as (its start, its end), uncut by the range."""
    out = []
    opened = window_floor(start, window, zone, start)
    while opened < to:
        end = window_end(opened, window, zone, to)
        out.append((opened, end))
        opened = end
    return out


def to_minute(moment: datetime) -> datetime:
    """Rows are kept per minute: ranges are taken to the minute, rounded down, in UTC."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def to_millisecond(moment: datetime) -> datetime:
    """Held reports are kept to the millisecond (DateTime64(3)): a moment cut to it, in UTC."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def as_utc(moment: datetime) -> datetime:
    """A time read back from ClickHouse (naive means UTC) as an aware UTC datetime."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def unix_time(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)
