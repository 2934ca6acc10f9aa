"""The metering processor, usage queries, backfill and reconciliation on the real chDB engine."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from processors.metering.processor import MeteringProcessor
from processors.metering.query import query_usage
from processors.metering.recompute import backfill, reconcile
from processors.model import Delivery, Event
from processors.storage.clickhouse import ClickHouse
from processors.storage.events import ClickHouseEventStore
from processors.windows import Window
from schemas import EnrichedEvent
from schemas.config import ProductConfig, parse_config

pytestmark = pytest.mark.integration

CONFIG = parse_config(
    {
        "billing": {"timezone": "UTC", "grace_hours": 24},
        "meters": [
            {"name": "calls", "event": "api_call", "aggregation": "count",
             "group_by": ["endpoint"]},
            {"name": "ok_calls", "event": "api_call", "aggregation": "count",
             "filters": {"status": [200, 201]}},
            {"name": "ms", "event": "api_call", "aggregation": "sum", "value": "ms"},
            {"name": "fastest", "event": "api_call", "aggregation": "min", "value": "ms"},
            {"name": "slowest", "event": "api_call", "aggregation": "max", "value": "ms"},
            {"name": "users", "event": "*", "aggregation": "unique_count", "value": "$user"},
            {"name": "regions", "event": "api_call", "aggregation": "unique_count",
             "value": "region"},
            {"name": "storage", "event": "storage", "aggregation": "latest", "value": "gb"},
        ],
    }
)  # fmt: skip


def number(text: str | None) -> Decimal | None:
    """A quantity as the usage API answers it (a decimal string) back as a number."""
    return None if text is None else Decimal(text)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def event(
    when: datetime, name: str = "api_call", tenant: str = "acme", received: datetime | None = None,
    **properties: Any,
) -> Event:  # fmt: skip
    return Event.of(EnrichedEvent(
        tenant=tenant,
        type="track",
        message_id=str(uuid.uuid4()),
        event=name,
        account=properties.pop("account", "acct-1"),
        user_id=properties.pop("user", "u-1"),
        properties=properties,
        timestamp=when,
        received_at=received or when + timedelta(seconds=1),
    ))  # fmt: skip


def stream(events: list[Event], partition: int = 0, first: int = 0) -> list[Delivery]:
    return [Delivery(e, partition, first + i) for i, e in enumerate(events)]


def random_calls(rng: random.Random, start: datetime, n: int) -> list[Event]:
    return [
        event(
            start + timedelta(seconds=rng.uniform(0, 3 * 86400)),
            ms=rng.choice([rng.randint(1, 900), round(rng.uniform(0.1, 99.9), 3)]),
            status=rng.choice([200, 201, 429, 500]),
            endpoint=rng.choice(["/a", "/b"]),
            region=rng.choice(["eu", "us", "ap"]),
            user=f"u-{rng.randint(1, 40)}",
            account=f"acct-{rng.randint(1, 3)}",
        )
        for _ in range(n)
    ]


def total(clickhouse: ClickHouse, meter: str, start: datetime, to: datetime, **kw: Any) -> Any:
    found = CONFIG.meter(meter)
    assert found is not None
    rows = query_usage(
        clickhouse, "acme", found, CONFIG.billing, start, to, by_customer=False, **kw
    )
    assert len(rows) <= 1
    return number(rows[0].quantity) if rows else None


START = datetime(2026, 3, 1, tzinfo=UTC)


def test_every_aggregation_is_exact_over_any_range(clickhouse: ClickHouse) -> None:
    events = random_calls(random.Random(1), START, 600)
    events += [event(START + timedelta(hours=h), "storage", gb=10 + h) for h in (5, 30, 2)]
    MeteringProcessor(clickhouse, CONFIG).write(stream(events))

    to = START + timedelta(days=3)
    calls = [e for e in events if e.event == "api_call"]
    ms = [Decimal(str(e.properties["ms"])) for e in calls]
    assert total(clickhouse, "calls", START, to) == len(calls)
    assert total(clickhouse, "ok_calls", START, to) == sum(
        e.properties["status"] in (200, 201) for e in calls
    )
    assert total(clickhouse, "ms", START, to) == sum(ms)
    assert total(clickhouse, "fastest", START, to) == min(ms)
    assert total(clickhouse, "slowest", START, to) == max(ms)
    assert total(clickhouse, "users", START, to) == len({e.user_id for e in events})
    assert total(clickhouse, "regions", START, to) == len({e.properties["region"] for e in calls})
    assert total(clickhouse, "storage", START, to) == Decimal(40)  # the last by event time

    # unique_count over a range is distinct over the range, not a sum of per-minute uniques
    day2 = [e for e in events if START + timedelta(days=1) <= e.timestamp < START + timedelta(2)]
    assert total(clickhouse, "users", START + timedelta(days=1), START + timedelta(days=2)) == len(
        {e.user_id for e in day2}
    )
    per_day = query_usage(clickhouse, "acme", CONFIG.meters[5], CONFIG.billing, START, to,
                          Window.DAY, by_customer=False)  # fmt: skip
    assert sum(number(r.quantity) or 0 for r in per_day) > len({e.user_id for e in events})


def test_group_by_and_customer_filter(clickhouse: ClickHouse) -> None:
    events = random_calls(random.Random(2), START, 300)
    MeteringProcessor(clickhouse, CONFIG).write(stream(events))
    meter = CONFIG.meters[0]
    rows = query_usage(
        clickhouse, "acme", meter, CONFIG.billing, START, START + timedelta(days=3),
        customers=["acct-1", "acct-2"], group_by=["endpoint"],
    )  # fmt: skip
    expected: dict[tuple[str, str], int] = defaultdict(int)
    for e in events:
        if e.account in ("acct-1", "acct-2"):
            expected[(e.account, e.properties["endpoint"])] += 1
    assert {(r.customer, r.groups["endpoint"]): number(r.quantity) for r in rows} == expected
    with pytest.raises(ValueError, match="cannot group by"):
        query_usage(clickhouse, "acme", meter, CONFIG.billing, START, START, group_by=["x"])


def test_a_redelivered_batch_counts_once(clickhouse: ClickHouse) -> None:
    processor = MeteringProcessor(clickhouse, CONFIG)
    first = stream(random_calls(random.Random(3), START, 50), partition=2)
    processor.write(first)
    processor.write(first)  # the same Kafka messages again, as after a crash before the commit
    later = stream(random_calls(random.Random(4), START, 30), partition=2, first=50)
    processor.write(first[40:] + later)  # an overlapping batch
    assert total(clickhouse, "calls", START, START + timedelta(days=3)) == 80


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Kolkata"])
def test_day_and_month_windows_follow_the_zone(clickhouse: ClickHouse, zone: str) -> None:
    tz = ZoneInfo(zone)
    rng = random.Random(zone)
    # around the local month end, where a UTC day or month would cut in the wrong place
    local_end = datetime(2026, 4, 1, tzinfo=tz).astimezone(UTC)
    events = [event(local_end + timedelta(minutes=rng.randint(-2000, 2000))) for _ in range(400)]
    MeteringProcessor(clickhouse, CONFIG).write(stream(events))
    start, to = local_end - timedelta(days=3), local_end + timedelta(days=3)
    meter = CONFIG.meters[0]
    for window, label in ((Window.DAY, "%Y-%m-%d"), (Window.MONTH, "%Y-%m")):
        rows = query_usage(clickhouse, "acme", meter, CONFIG.billing, start, to, window, tz,
                           by_customer=False)  # fmt: skip
        expected: dict[str, int] = defaultdict(int)
        for e in events:
            expected[e.timestamp.astimezone(tz).strftime(label)] += 1
        got = {
            moment(r.window_start).astimezone(tz).strftime(label): number(r.quantity) for r in rows
        }
        assert got == expected
        for r in rows:  # windows start at local midnight (or the range start)
            local = moment(r.window_start).astimezone(tz)
            assert (local.hour, local.minute) == (0, 0) or moment(r.window_start) == start


def test_late_events_are_adjustments_not_invoiced(clickhouse: ClickHouse) -> None:
    in_march = START + timedelta(days=10)
    on_time = [event(in_march, received=in_march) for _ in range(5)]
    # March ends 2026-04-01 00:00 UTC; with 24 h grace it is final from 2026-04-02 00:00
    late = [event(in_march, received=datetime(2026, 4, 2, 0, 0, 1, tzinfo=UTC)) for _ in range(2)]
    just_in_time = [event(in_march, received=datetime(2026, 4, 1, 23, 59, tzinfo=UTC))]
    MeteringProcessor(clickhouse, CONFIG).write(stream(on_time + late + just_in_time))
    [row] = query_usage(clickhouse, "acme", CONFIG.meters[0], CONFIG.billing, START,
                        datetime(2026, 4, 1, tzinfo=UTC), by_customer=False,
                        complete_through=datetime(2026, 4, 2, tzinfo=UTC))  # fmt: skip
    assert (row.quantity, row.adjusted_quantity, row.late_events) == ("6", "8", 2)
    assert row.final
    # final only once every event received before 2026-04-02 00:00 is folded
    for through in (None, datetime(2026, 4, 1, 23, 59, 59, 999000, tzinfo=UTC)):
        [open_row] = query_usage(clickhouse, "acme", CONFIG.meters[0], CONFIG.billing, START,
                                 datetime(2026, 4, 1, tzinfo=UTC), by_customer=False,
                                 complete_through=through)  # fmt: skip
        assert not open_row.final


def test_tenants_never_mix(clickhouse: ClickHouse) -> None:
    MeteringProcessor(clickhouse, CONFIG).write(
        stream([event(START, tenant="acme") for _ in range(3)] + [event(START, tenant="globex")])
    )
    assert total(clickhouse, "calls", START, START + timedelta(hours=1)) == 3


def test_reconciliation_finds_nothing_after_clean_writes_and_every_tampering(
    clickhouse: ClickHouse,
) -> None:
    events = random_calls(random.Random(5), START, 200)
    deliveries = stream(events)
    kept = ClickHouseEventStore(clickhouse).store(deliveries)
    MeteringProcessor(clickhouse, CONFIG).write(kept)
    to = START + timedelta(days=3)
    assert reconcile(clickhouse, CONFIG, START, to) == []

    # a lost write: one event's raw row is there, its meter rows are not
    lost = event(START + timedelta(hours=1), ms=5, status=200, endpoint="/a", region="eu")
    ClickHouseEventStore(clickhouse).store([Delivery(lost, 0, 9999)])
    differences = reconcile(clickhouse, CONFIG, START, to)
    assert {d.key[1] for d in differences} == {
        "calls",
        "ok_calls",
        "ms",
        "fastest",
        "slowest",
        "users",
        "regions",
    } - _unchanged(lost, events)
    assert all("01:" in d.describe() for d in differences)


def _unchanged(lost: Event, events: list[Event]) -> set[str]:
    """Meters whose minute totals the lost event would not change (e.g. a user already seen)."""
    minute = lost.timestamp.replace(second=0, microsecond=0)
    same_minute = [
        e for e in events
        if e.timestamp.replace(second=0, microsecond=0) == minute and e.account == lost.account
    ]  # fmt: skip
    unchanged = set()
    if any(e.user_id == lost.user_id for e in same_minute):
        unchanged.add("users")
    if any(e.properties["region"] == "eu" for e in same_minute):
        unchanged.add("regions")
    ms = [Decimal(str(e.properties["ms"])) for e in same_minute]
    if ms and min(ms) < 5:
        unchanged.add("fastest")
    if ms and max(ms) > 5:
        unchanged.add("slowest")
    return unchanged


def test_backfill_bills_a_meter_defined_after_the_events(clickhouse: ClickHouse) -> None:
    events = random_calls(random.Random(6), START, 300)
    kept = ClickHouseEventStore(clickhouse).store(stream(events, partition=1))
    before = ProductConfig(billing=CONFIG.billing, meters=CONFIG.meters[:1])
    MeteringProcessor(clickhouse, before).write(kept)
    to = START + timedelta(days=3)
    assert reconcile(clickhouse, CONFIG, START, to) != []  # the other meters have nothing yet

    steps: list[int] = []
    written = backfill(clickhouse, CONFIG, START, to, progress=lambda i, n, _: steps.append(i))
    assert written > 0 and steps == [1, 2, 3]
    assert reconcile(clickhouse, CONFIG, START, to) == []
    assert total(clickhouse, "ms", START, to) == sum(
        Decimal(str(e.properties["ms"])) for e in events
    )
    # the Kafka mark survived the rewrite: a redelivery of the same batch adds nothing
    MeteringProcessor(clickhouse, CONFIG).write(kept)
    assert reconcile(clickhouse, CONFIG, START, to) == []


def test_a_crash_between_the_raw_write_and_the_meter_write_is_repaired_by_redelivery(
    clickhouse: ClickHouse,
) -> None:
    from processors.model import RawMessage
    from processors.worker.batch import run_batch

    events = random_calls(random.Random(7), START, 120)
    messages = [RawMessage(3, i, None, msgspec.json.encode(e)) for i, e in enumerate(events)]
    store = ClickHouseEventStore(clickhouse)
    store.store(stream(events, partition=3))  # the raw events landed, then the worker died
    to = START + timedelta(days=3)
    assert reconcile(clickhouse, CONFIG, START, to) != []

    processor = MeteringProcessor(clickhouse, CONFIG)
    result = run_batch(messages, store, [processor])  # Kafka redelivers the uncommitted batch
    assert (result.stored, result.duplicates) == (120, 0)
    assert reconcile(clickhouse, CONFIG, START, to) == []
    resent = [
        RawMessage(3, 500 + i, None, msgspec.json.encode(e)) for i, e in enumerate(events[:10])
    ]
    result = run_batch(resent, store, [processor])  # the SDK sent ten of them again
    assert (result.stored, result.duplicates) == (0, 10)
    assert reconcile(clickhouse, CONFIG, START, to) == []


def test_the_export_pages_through_every_meter_and_customer_of_a_period(
    clickhouse: ClickHouse,
) -> None:
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from processors.api.auth import read_key_tenant
    from processors.api.usage_export import usage_export_router

    events = random_calls(random.Random(8), START, 200)
    MeteringProcessor(clickhouse, CONFIG).write(stream(events))
    app = FastAPI()
    app.include_router(
        usage_export_router(
            clickhouse,
            CONFIG,
            read_key_tenant({"rk-a": "acme", "rk-g": "globex"}),
            lambda: datetime(2026, 4, 5, tzinfo=UTC),  # every event folded to April 5
        )
    )
    client = TestClient(app)

    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"period": "2026-03", "limit": 4, **({"cursor": cursor} if cursor else {})}
        answer = client.get(
            "/v1/usage/export", params=params, headers={"Authorization": "Bearer rk-a"}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert len(body["data"]) <= 4
        rows += body["data"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    expected = []
    for meter in CONFIG.meters:
        april = datetime(2026, 4, 1, tzinfo=UTC)
        found = query_usage(clickhouse, "acme", meter, CONFIG.billing, START, april,
                            group_by=meter.group_by)  # fmt: skip
        for r in found:
            expected.append((meter.name, r.customer, tuple(r.groups.items()), r.quantity))
    got = [(r["meter"], r["customer"], tuple(r["groups"].items()), r["quantity"]) for r in rows]
    assert got == expected and pages >= len(expected) // 4
    assert all(r["final"] for r in rows)  # March 2026 closed long ago, and all is folded

    other = client.get("/v1/usage/export", params={"period": "2026-03"},
                       headers={"Authorization": "Bearer rk-g"})  # fmt: skip
    assert other.json()["data"] == []
    assert client.get("/v1/usage/export", params={"period": "2026-03"}).status_code == 401
    assert client.get("/v1/usage/export", params={"period": "March"},
                      headers={"Authorization": "Bearer rk-a"}).status_code == 400  # fmt: skip
