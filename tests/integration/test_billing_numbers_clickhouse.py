"""Invoiced held quantities on the real chDB engine: late reports across closed periods, the
open period to date, exact ranges, clamped totals and proration by the period."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from processors.metering.processor import MeteringProcessor
from processors.metering.query import UsageWindow, query_usage
from processors.model import Delivery, Event
from processors.storage.clickhouse import ClickHouse
from processors.windows import Window
from schemas.config import parse_config
from schemas.enriched import CLAMPED, FLAG_KEY, EnrichedEvent
from schemas.meters import Meter

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")
CONFIG = parse_config(
    {
        # October is final on Nov 3, 04:00 UTC (Nov 1 00:00 in New York plus 72 h)
        "billing": {"timezone": "America/New_York", "grace_hours": 72},
        "meters": [
            {"name": "seat_days", "event": "seat_added", "removed_event": "seat_removed",
             "aggregation": "seats", "per": "day"},
            {"name": "seat_hours", "event": "seats_added", "removed_event": "seats_removed",
             "aggregation": "seats", "value": "n", "per": "hour"},
            {"name": "gb_hours", "event": "storage", "aggregation": "time_weighted",
             "value": "gb", "per": "hour"},
            {"name": "seats", "event": "seat_added", "removed_event": "seat_removed",
             "aggregation": "seats", "per": "period"},
            {"name": "gauge_hours", "event": "gauge", "aggregation": "time_weighted",
             "value": "v", "per": "hour", "expires_after": "PT6H"},
            {"name": "calls", "event": "api_call", "aggregation": "count"},
        ],
    }
)  # fmt: skip
SEAT_DAYS, SEAT_HOURS, GB_HOURS, SEATS, GAUGE_HOURS, CALLS = CONFIG.meters
NOV_10 = datetime(2026, 11, 10, 15, tzinfo=UTC)  # October final, November open


def ny(*a: int) -> datetime:
    return datetime(*a, tzinfo=NY)  # type: ignore[misc]


def ev(
    when: datetime, name: str, received: datetime, context: dict[str, Any] | None = None,
    **properties: Any,
) -> Event:  # fmt: skip
    return Event.of(EnrichedEvent(
        tenant="acme", type="track", message_id=str(uuid.uuid4()), event=name,
        account="acct-1", user_id="u-1", properties=properties, context=context or {},
        timestamp=when, received_at=received,
    ))  # fmt: skip


class Stream:
    def __init__(self, clickhouse: ClickHouse) -> None:
        self.clickhouse, self.offset = clickhouse, 0

    def write(self, *events: Event) -> None:
        batch = [Delivery(e, 0, self.offset + i) for i, e in enumerate(events)]
        self.offset += len(batch)
        MeteringProcessor(self.clickhouse, CONFIG).write(batch)


def month(clickhouse: ClickHouse, meter: Meter, year: int, m: int, now: datetime) -> UsageWindow:
    start = ny(year, m, 1)
    end = ny(year + m // 12, m % 12 + 1, 1)
    [row] = query_usage(clickhouse, "acme", meter, CONFIG.billing, start, end, now=now,
                        complete_through=now)  # fmt: skip
    return row


def test_a_seat_reported_after_its_month_closed_is_in_the_open_months_invoice(
    clickhouse: ClickHouse,
) -> None:
    Stream(clickhouse).write(ev(ny(2026, 10, 5), "seat_added", received=NOV_10))
    now = datetime(2026, 12, 10, tzinfo=UTC)
    october = month(clickhouse, SEAT_DAYS, 2026, 10, now)
    assert (october.quantity, october.late_events) == ("0", 1)  # closed: not invoiced again
    assert october.adjusted_quantity == "27"  # Oct 5 to Nov 1
    november = month(clickhouse, SEAT_DAYS, 2026, 11, now)
    # 30 days and the hour DST gives back on Nov 1
    assert (november.quantity, november.adjusted_quantity) == ("30.041666667", "30.041666667")


def test_changes_carried_in_late_never_bill_negative_seats(clickhouse: ClickHouse) -> None:
    dec_2 = datetime(2026, 12, 2, 12, tzinfo=UTC)  # September and October final, November open
    Stream(clickhouse).write(
        ev(ny(2026, 9, 30), "seats_added", received=dec_2, n=1),
        ev(datetime(2026, 11, 1, 3, 59, 59, 999000, tzinfo=UTC), "seats_added", dec_2, n=4),
        ev(datetime(2026, 12, 1, 4, 59, 59, 999000, tzinfo=UTC), "seats_removed", dec_2, n=5),
    )
    now = datetime(2027, 1, 10, tzinfo=UTC)
    december = month(clickhouse, SEAT_HOURS, 2026, 12, now)
    assert (december.quantity, december.adjusted_quantity) == ("0", "0")
    november = month(clickhouse, SEAT_HOURS, 2026, 11, now)
    # 5 seats for November's 721 hours, less the last millisecond
    assert november.quantity == "3604.999998611"
    october = month(clickhouse, SEAT_HOURS, 2026, 10, now)
    assert october.quantity == "0"  # its reports came after it closed
    assert october.adjusted_quantity == "744.000001111"  # 1 seat for 744 h, 4 more for 1 ms


def test_a_reading_reported_late_carries_into_the_open_month(clickhouse: ClickHouse) -> None:
    Stream(clickhouse).write(ev(ny(2026, 9, 29), "storage", received=NOV_10, gb="42.125"))
    november = month(clickhouse, GB_HOURS, 2026, 11, datetime(2026, 12, 10, tzinfo=UTC))
    assert november.quantity == "30372.125"  # 42.125 GB x 721 h
    october = month(clickhouse, GB_HOURS, 2026, 10, datetime(2026, 12, 10, tzinfo=UTC))
    assert (october.quantity, october.adjusted_quantity) == (None, "31341")  # x 744 h


def test_the_open_period_is_held_to_now_and_projected_apart(clickhouse: ClickHouse) -> None:
    Stream(clickhouse).write(
        ev(ny(2026, 11, 20), "seat_added", received=ny(2026, 11, 20, 0, 0, 1)),
        ev(ny(2026, 11, 20), "storage", received=ny(2026, 11, 20, 0, 0, 1), gb=5),
    )
    now = ny(2026, 12, 4, 9, 36)  # 3.4 days into December
    seats = month(clickhouse, SEAT_DAYS, 2026, 12, now)
    assert (seats.quantity, seats.adjusted_quantity, seats.projected_quantity) == (
        "3.4", "3.4", "31"
    )  # fmt: skip
    assert not seats.final
    gb = month(clickhouse, GB_HOURS, 2026, 12, now)
    assert (gb.quantity, gb.projected_quantity) == ("408", "3720")  # 5 GB x 81.6 h, x 744 h
    # a range wholly in the future holds nothing yet
    [later] = query_usage(clickhouse, "acme", SEAT_DAYS, CONFIG.billing, ny(2026, 12, 10),
                          ny(2026, 12, 11), now=now)  # fmt: skip
    assert (later.quantity, later.projected_quantity) == (None, "1")


def test_held_ranges_are_exact_to_the_millisecond_others_on_the_minute(
    clickhouse: ClickHouse,
) -> None:
    at = datetime(2026, 11, 20, 15, tzinfo=UTC)
    Stream(clickhouse).write(
        ev(at, "storage", received=at, gb=3600),
        ev(at + timedelta(seconds=30), "api_call", received=at),
    )
    now = datetime(2026, 12, 1, tzinfo=UTC)
    a, b = at + timedelta(seconds=25), at + timedelta(minutes=2, seconds=35)
    [row] = query_usage(clickhouse, "acme", GB_HOURS, CONFIG.billing, a, b, now=now)
    assert row.quantity == "130"  # 3600 GB for 130 s, in GB-hours
    assert (row.window_start, row.window_end) == (a.isoformat(), b.isoformat())
    [inside] = query_usage(clickhouse, "acme", GB_HOURS, CONFIG.billing, a,
                           a + timedelta(milliseconds=1), now=now)  # fmt: skip
    assert inside.quantity == "0.001"
    with pytest.raises(ValueError, match="per minute"):
        query_usage(clickhouse, "acme", CALLS, CONFIG.billing, a, b, now=now)
    with pytest.raises(ValueError, match="millisecond"):
        query_usage(clickhouse, "acme", GB_HOURS, CONFIG.billing,
                    a + timedelta(microseconds=1), b, now=now)  # fmt: skip


def test_a_removal_below_zero_is_clamped_and_reported(clickhouse: ClickHouse) -> None:
    first = ny(2026, 11, 3)
    Stream(clickhouse).write(
        ev(first, "seat_removed", received=first),
        ev(ny(2026, 11, 4), "seat_removed", received=first),
        ev(ny(2026, 11, 11), "seat_added", received=first),
    )
    row = month(clickhouse, SEAT_DAYS, 2026, 11, datetime(2026, 12, 10, tzinfo=UTC))
    assert row.quantity == "20"  # one seat from Nov 11, never -1 or -2 before it
    assert (row.below_zero_events, row.first_below_zero_at) == (
        2,
        first.astimezone(UTC).isoformat(),
    )


def test_a_reading_stored_at_receipt_says_so(clickhouse: ClickHouse) -> None:
    at = datetime(2026, 11, 20, 15, tzinfo=UTC)
    clamped = {FLAG_KEY: {CLAMPED: "2031-01-01T00:00:00+00:00"}}
    Stream(clickhouse).write(
        ev(at, "storage", received=at, context=clamped, gb=1),
        ev(at, "api_call", received=at, context=clamped),
        ev(at, "api_call", received=at),
    )
    row = month(clickhouse, GB_HOURS, 2026, 11, datetime(2026, 12, 10, tzinfo=UTC))
    assert (row.events, row.clamped_events) == (1, 1)
    calls = month(clickhouse, CALLS, 2026, 11, datetime(2026, 12, 10, tzinfo=UTC))
    assert (calls.events, calls.clamped_events) == (2, 1)


def test_seats_per_period_are_fractions_of_the_month_dst_included(
    clickhouse: ClickHouse,
) -> None:
    Stream(clickhouse).write(
        ev(ny(2026, 10, 20), "seat_added", received=ny(2026, 10, 20)),
        ev(ny(2026, 11, 16), "seat_added", received=ny(2026, 11, 16)),
    )
    november = month(clickhouse, SEATS, 2026, 11, datetime(2026, 12, 10, tzinfo=UTC))
    # one seat the whole 721-hour month, one from Nov 16 00:00: 360 of its 721 hours
    assert november.quantity == "1.499306519"
    months = query_usage(clickhouse, "acme", SEATS, CONFIG.billing, ny(2026, 11, 1),
                         ny(2027, 1, 1), window=Window.MONTH, zone=NY,
                         now=datetime(2027, 1, 10, tzinfo=UTC))  # fmt: skip
    assert [m.quantity for m in months] == ["1.499306519", "2"]
    # half of December (744 h): 0.5 a seat, whatever the month's length
    [half] = query_usage(clickhouse, "acme", SEATS, CONFIG.billing, ny(2026, 12, 1),
                         ny(2026, 12, 16, 12), now=datetime(2027, 1, 10, tzinfo=UTC))  # fmt: skip
    assert half.quantity == "1"


def test_a_reading_expires_when_its_reporter_stops(clickhouse: ClickHouse) -> None:
    at = datetime(2026, 11, 20, 12, tzinfo=UTC)
    Stream(clickhouse).write(
        ev(at, "gauge", received=at, v=10),
        ev(at + timedelta(days=1), "gauge", received=at + timedelta(days=1), v=2),
    )
    [day] = query_usage(clickhouse, "acme", GAUGE_HOURS, CONFIG.billing, at,
                        at + timedelta(days=3), now=datetime(2026, 12, 10, tzinfo=UTC))  # fmt: skip
    assert day.quantity == "72"  # 10 for 6 h, then nothing until 2 for 6 h
