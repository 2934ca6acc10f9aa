"""Query parameters every router reads alike: a time zone, a billing period, a page cursor, the
last N days."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from fastapi import HTTPException

from processors.metering.calendar import period_end, period_start
from processors.windows import to_minute
from schemas.config import Billing
from schemas.zones import known_zone


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`, or 400."""
    try:
        return ZoneInfo(known_zone(name))
    except ValueError as exc:
        raise HTTPException(400, f"tz {exc}") from None


def billing_period(text: str, billing: Billing) -> tuple[datetime, datetime]:
    """[start, end) of the billing month `text` (YYYY-MM) in the billing zone, or 400."""
    try:
        month = datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise HTTPException(400, f"period {text!r}: give a month as YYYY-MM") from None
    middle = month.replace(day=15, tzinfo=billing.zone).astimezone(UTC)
    return period_start(middle, billing), period_end(middle, billing)


def cursor(position: int, offset: int) -> str:
    """An opaque page cursor: which item of a list, and how far into it."""
    return base64.urlsafe_b64encode(json.dumps([position, offset]).encode()).decode()


def uncursor(text: str | None) -> tuple[int, int]:
    """The (position, offset) a cursor holds; (0, 0) for none; 400 for one not given out."""
    if not text:
        return 0, 0
    try:
        position, offset = json.loads(base64.urlsafe_b64decode(text.encode()))
        return int(position), int(offset)
    except (ValueError, TypeError):
        raise HTTPException(400, "cursor is not one this API gave out") from None


def last_days(days: int, to: datetime | None) -> tuple[datetime, datetime]:
    """[to - days, to), to the minute; `to` defaults to now."""
    end = to_minute(to or datetime.now(UTC))
    return end - timedelta(days=days), end
