"""avg, time_weighted and seats meters on the real chDB engine, against figures worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from processors.metering.processor import MeteringProcessor
from processors.metering.query import UsageWindow, query_usage
from processors.metering.recompute import backfill, reconcile
from processors.model import Delivery, Event
from processors.storage.clickhouse import ClickHouse
from processors.storage.events import ClickHouseEventStore
from processors.windows import Window
from schemas.config import parse_config
from tests.integration.test_metering_clickhouse import event

pytestmark = pytest.mark.integration

CONFIG = parse_config(
    {
        "billing": {"timezone": "UTC", "grace_hours": 24},
        "meters": [
            {"name": "gb_hours", "event": "storage", "aggregation": "time_weighted",
             "value": "gb", "per": "hour", "group_by": ["region"]},
            {"name": "seat_days", "event": "seat_added", "removed_event": "seat_removed",
             "aggregation": "seats", "per": "day"},
            {"name": "mean_ms", "event": "api_call", "aggregation": "avg", "value": "ms"},
        ],
    }
)  # fmt: skip
GB_HOURS, SEAT_DAYS, MEAN_MS = CONFIG.meters


class Stream:
    """Batches written as the worker writes them: each at the next Kafka offsets of partition 0."""

    def __init__(self, clickhouse: ClickHouse) -> None:
        self.clickhouse = clickhouse
        self.offset = 0

    def write(self, *events: Event) -> None:
        batch = [Delivery(e, 0, self.offset + i) for i, e in enumerate(events)]
        self.offset += len(batch)
        kept = ClickHouseEventStore(self.clickhouse).store(batch)
        MeteringProcessor(self.clickhouse, CONFIG).write(kept)


def usage(
    clickhouse: ClickHouse, meter: Any, start: datetime, to: datetime, **kw: Any
) -> list[UsageWindow]:
    kw.setdefault("now", datetime(2026, 12, 1, tzinfo=UTC))
    kw.setdefault("complete_through", kw["now"])
    return query_usage(clickhouse, "acme", meter, CONFIG.billing, start, to, **kw)


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
def test_gb_hours_across_a_month_boundary_with_a_value_carried_in(
    clickhouse: ClickHouse, zone: str
) -> None:
    tz = ZoneInfo(zone)
    local = lambda *a: datetime(*a, tzinfo=tz)  # noqa: E731
    Stream(clickhouse).write(
        event(local(2026, 3, 30, 12), "storage", gb=10, region="eu"),  # before the range
        event(local(2026, 4, 1, 6), "storage", gb="6", region="eu"),
        event(local(2026, 3, 31, 18), "storage", gb=4.5, region="eu"),  # arrives after 6 GB
    )
    rows = usage(clickhouse, GB_HOURS, local(2026, 3, 31), local(2026, 4, 2), window=Window.MONTH,
                 zone=tz)  # fmt: skip
    # March 31: 10 GB for 18 h, 4.5 GB for 6 h; April 1: 4.5 GB for 6 h, 6 GB for 18 h
    assert [(r.window_start, r.quantity, r.events) for r in rows] == [
        (local(2026, 3, 31).astimezone(UTC).isoformat(), "207", 1),
        (local(2026, 4, 1).astimezone(UTC).isoformat(), "135", 1),
    ]
    assert rows[0].groups == {} and rows[0].customer == "acct-1"
    [by_region] = usage(clickhouse, GB_HOURS, local(2026, 3, 31), local(2026, 4, 2),
                        group_by=["region"])  # fmt: skip
    assert (by_region.groups, by_region.quantity) == ({"region": "eu"}, "342")
    # the carried value holds to the end of the range; nothing before the first report counts
    [later] = usage(clickhouse, GB_HOURS, local(2026, 4, 3), local(2026, 4, 3, 1, 30))
    assert later.quantity == "9" and later.events == 0
    assert usage(clickhouse, GB_HOURS, local(2026, 3, 1), local(2026, 3, 30, 12)) == []


def test_a_late_report_changes_only_the_interval_it_falls_in(clickhouse: ClickHouse) -> None:
    day = datetime(2026, 3, 10, tzinfo=UTC)
    stream = Stream(clickhouse)
    stream.write(event(day + timedelta(hours=12), "storage", gb=20))
    stream.write(event(day, "storage", gb=10))
    # March is final from April 2 (24 h grace): this report is late, reported apart
    late = datetime(2026, 4, 3, tzinfo=UTC)
    stream.write(event(day + timedelta(hours=6), "storage", received=late, gb=40))
    [row] = usage(clickhouse, GB_HOURS, day, day + timedelta(days=1))
    assert row.quantity == "360"  # 10 GB x 12 h + 20 GB x 12 h, as invoiced
    assert row.adjusted_quantity == "540"  # 10 x 6 + 40 x 6 + 20 x 12
    assert (row.events, row.late_events, row.final) == (3, 1, True)
    [next_day] = usage(clickhouse, GB_HOURS, day + timedelta(days=1), day + timedelta(days=2))
    assert (next_day.quantity, next_day.adjusted_quantity) == ("480", "480")


def test_seats_are_prorated_by_the_day(clickhouse: ClickHouse) -> None:
    april = lambda d: datetime(2026, 4, d, tzinfo=UTC)  # noqa: E731
    Stream(clickhouse).write(
        event(april(20), "seat_added", user="ann"),
        event(april(20), "seat_added", user="bob"),
        event(april(25), "seat_removed", user="ann"),
        # without a `value`, the meter counts one seat per event, whatever its properties
        event(april(26), "seat_added", seats=2, user="ops"),
    )
    [month] = usage(clickhouse, SEAT_DAYS, april(1), datetime(2026, 5, 1, tzinfo=UTC))
    # ann 5 seat-days (20th to 25th), bob 11 (20th to the end of April's 30 days), ops 5
    assert (month.quantity, month.events, month.skipped_events) == ("21", 4, 0)
    [may] = usage(clickhouse, SEAT_DAYS, datetime(2026, 5, 1, tzinfo=UTC),
                  datetime(2026, 5, 11, tzinfo=UTC))  # fmt: skip
    assert may.quantity == "20"  # bob's and ops' seats, carried into the next period


def test_seats_count_a_value_when_the_meter_names_one(clickhouse: ClickHouse) -> None:
    config = parse_config({"meters": [
        {"name": "seat_hours", "event": "seats_bought", "removed_event": "seats_released",
         "aggregation": "seats", "value": "n", "per": "hour"}]})  # fmt: skip
    start = datetime(2026, 6, 1, tzinfo=UTC)
    batch = [
        Delivery(event(start, "seats_bought", n=5), 0, 0),
        Delivery(event(start + timedelta(hours=2), "seats_released", n=3), 0, 1),
        Delivery(event(start + timedelta(hours=3), "seats_released", n="x"), 0, 2),
    ]
    MeteringProcessor(clickhouse, config).write(batch)
    [row] = query_usage(clickhouse, "acme", config.meters[0], config.billing, start,
                        start + timedelta(hours=4))  # fmt: skip
    assert (row.quantity, row.events, row.skipped_events) == ("14", 2, 1)  # 5 x 2 + 2 x 2


def test_avg_is_the_exact_mean_rounded_half_even(clickhouse: ClickHouse) -> None:
    start = datetime(2026, 5, 1, tzinfo=UTC)
    at = lambda m: start + timedelta(minutes=m)  # noqa: E731
    Stream(clickhouse).write(
        event(at(0), "api_call", ms=1.25), event(at(1), "api_call", ms="2.5"),
        event(at(2), "api_call", ms=0.1), event(at(3), "api_call", ms="n/a"),
        event(at(60), "api_call", ms="0.000000001"), event(at(61), "api_call", ms="0.000000002"),
        event(at(120), "api_call", ms="0.000000001"), event(at(121), "api_call", ms="0.000000004"),
    )  # fmt: skip
    hours = usage(clickhouse, MEAN_MS, start, at(180), window=Window.HOUR)
    # 3.85 / 3; 1.5e-9 rounds up to the even 2e-9; 2.5e-9 rounds down to the even 2e-9
    assert [r.quantity for r in hours] == ["1.283333333", "0.000000002", "0.000000002"]
    assert [r.skipped_events for r in hours] == [1, 0, 0]


def test_reconcile_and_backfill_cover_the_held_meters(clickhouse: ClickHouse) -> None:
    start = datetime(2026, 7, 1, tzinfo=UTC)
    Stream(clickhouse).write(
        event(start, "storage", gb=3), event(start + timedelta(hours=1), "storage", gb=5),
        event(start, "seat_added"), event(start + timedelta(hours=12), "seat_removed"),
        event(start, "api_call", ms=3),
    )  # fmt: skip
    to = start + timedelta(days=1)
    assert reconcile(clickhouse, CONFIG, start, to) == []
    before = [usage(clickhouse, m, start, to) for m in CONFIG.meters]
    # a report lost from the stored rows is found, then the backfill puts it back
    clickhouse.command("ALTER TABLE meter_minutes DELETE WHERE meter = 'gb_hours' AND"
                       " minute = {m:DateTime('UTC')} SETTINGS mutations_sync = 2",
                       {"m": start + timedelta(hours=1)})  # fmt: skip
    [lost] = reconcile(clickhouse, CONFIG, start, to)
    assert "gb_hours" in lost.describe() and lost.stored is None
    assert backfill(clickhouse, CONFIG, start, to) > 0
    assert reconcile(clickhouse, CONFIG, start, to) == []
    assert [usage(clickhouse, m, start, to) for m in CONFIG.meters] == before
    assert before[0][0].quantity == "118" and before[1][0].quantity == "0.5"
