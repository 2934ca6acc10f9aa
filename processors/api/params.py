"""Query parameters every router reads alike: a time zone, a billing period, a page cursor, the
last N days."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import HTTPException

from processors.metering.calendar import period_end, period_start
from processors.windows import to_minute
from schemas.config import Billing
from schemas.events import EARLIEST, LATEST
from schemas.zones import known_zone

RANGE = f"from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} (UTC)"


def in_range(**times: datetime | None) -> None:
    """400 naming the parameter when a time is outside what is stored and answered for."""
    for name, value in times.items():
        if value is not None and not EARLIEST <= value <= LATEST:
            raise HTTPException(400, f"`{name}` {value.isoformat()} is out of range: give {RANGE}")


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or 400."""
    try:
        return ZoneInfo(known_zone(name))
    except ValueError as exc:
        raise HTTPException(400, f"tz {exc}") from None


def billing_period(text: str, billing: Billing) -> tuple[datetime, datetime]:
    """[start, end) of the billing month `text` (YYYY-MM) in the billing zone, or 400."""
    try:
        if not re.fullmatch(r"\d{4}-\d{2}", text):
            raise ValueError(text)
        month = datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise HTTPException(400, f"period {text!r}: give a month as YYYY-MM") from None
    out_of_range = HTTPException(400, f"period {text!r} is out of range: give a month {RANGE}")
    if not EARLIEST.year <= month.year < LATEST.year:
        raise out_of_range
    middle = month.replace(day=15, tzinfo=billing.zone).astimezone(UTC)
    start, end = period_start(middle, billing), period_end(middle, billing)
    if start < EARLIEST:  # January 1970 in a zone east of UTC begins in 1969
        raise out_of_range
    return start, end


def cursor(position: int, offset: int) -> str:
    """An opaque page cursor: which item of a list, and how far into it."""
    return base64.urlsafe_b64encode(json.dumps([position, offset]).encode()).decode()


# A cursor's numbers: which item of a short list, and how far into it (a page offset).
MAX_CURSOR = 10**9


def uncursor(text: str | None, positions: int) -> tuple[int, int]:
    """The (position, offset) a cursor holds; (0, 0) for none; 400 for anything this API does
    not give out: two whole numbers, a position below `positions`, an offset not negative."""
    if not text:
        return 0, 0
    try:
        found = json.loads(base64.urlsafe_b64decode(text.encode()))
    except ValueError:
        found = None
    if (
        isinstance(found, list)
        and len(found) == 2
        and all(type(n) is int for n in found)
        and 0 <= found[0] < positions
        and 0 <= found[1] <= MAX_CURSOR
    ):
        return found[0], found[1]
    raise HTTPException(400, "cursor is not one this API gave out")


def last_days(days: int, to: datetime | None) -> tuple[datetime, datetime]:
    """[to - days, to), to the minute; `to` defaults to now."""
    end = to_minute(to or datetime.now(UTC))
    in_range(to=end, start=end - timedelta(days=days))
    return end - timedelta(days=days), end
