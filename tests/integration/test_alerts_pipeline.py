"""Usage alerts end to end: collector → Kafka → worker → the `usage_alerts` topic and ClickHouse,
read back at /v1/alerts. Crossings for every aggregation, several thresholds in one batch, a
plan change mid-period, a late event in grace and one after final, the worker SIGKILLed around
the crossings: every record once by id."""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from processors.metering.calendar import period_start
from schemas.config import Billing
from tests.conftest import Corner
from tests.harness import Service, bearer, http, wait_until
from tests.integration.test_metering_pipeline import post
from tests.integration.topic_reader import read_topic

pytestmark = pytest.mark.integration

METERS = """
[billing]
timezone = "America/New_York"
grace_hours = 2000          # the last month is still open to late events

[[meters]]
name = "calls"
event = "api_call"
aggregation = "count"

[[meters]]
name = "bytes"
event = "export"
aggregation = "sum"
value = "bytes"

[[meters]]
name = "biggest"
event = "export"
aggregation = "max"
value = "bytes"

[[meters]]
name = "mean"
event = "export"
aggregation = "avg"
value = "bytes"

[[meters]]
name = "smallest"
event = "export"
aggregation = "min"
value = "bytes"

[[meters]]
name = "gb_minutes"
event = "storage"
aggregation = "time_weighted"
value = "gb"
per = "minute"

[[meters]]
name = "last_gb"
event = "storage"
aggregation = "latest"
value = "gb"

[[meters]]
name = "users"
event = "*"
aggregation = "unique_count"
value = "$user"

[[meters]]
name = "seats"
event = "seat_added"
removed_event = "seat_removed"
aggregation = "seats"
per = "minute"

[[plans]]
name = "free"
default = true
included = { calls = 10, bytes = 1000 }
thresholds = [
  { meter = "calls", percent = 80 }, { meter = "calls", percent = 100 },
  { meter = "calls", percent = 150 }, { meter = "bytes", percent = 100 },
  { meter = "biggest", quantity = 500 }, { meter = "mean", quantity = 300 },
  { meter = "last_gb", quantity = 5 }, { meter = "users", quantity = 3 },
  { meter = "seats", quantity = 1 }, { meter = "smallest", quantity = 400 },
  { meter = "gb_minutes", quantity = 20 },
]

[[plans]]
name = "pro"
included = { calls = 1000, bytes = 100000 }
thresholds = [{ meter = "calls", percent = 80 }, { meter = "calls", percent = 100 }]
"""


def alerts_config(corner: Corner) -> dict[str, str]:
    path = Path(corner.home) / "plans.toml"
    path.write_text(METERS)
    return {"USAGE_STREAM_CONFIG_FILE": str(path)}


def track(
    name: str, account: str, when: datetime, user: str = "u-1", **props: Any
) -> dict[str, Any]:
    return {"type": "track", "messageId": str(uuid.uuid4()), "userId": user, "groupId": account,
            "event": name, "timestamp": when.isoformat(), "properties": props}  # fmt: skip


def group(account: str, when: datetime, plan: str) -> dict[str, Any]:
    return {"type": "group", "messageId": str(uuid.uuid4()), "userId": "u-1", "groupId": account,
            "timestamp": when.isoformat(), "traits": {"plan": plan}}  # fmt: skip


def alerts(worker: Service, corner: Corner, **filters: str) -> list[dict[str, Any]]:
    query = "&".join(f"{k}={v}" for k, v in filters.items())
    status, body = http("GET", f"{worker.url}/v1/alerts?limit=1000&{query}", None,
                        bearer(corner.read_key))  # fmt: skip
    assert status == 200, body
    return list(body)


def on_topic(corner: Corner) -> list[dict[str, Any]]:
    records = read_topic(corner.env["USAGE_STREAM_KAFKA_BOOTSTRAP"],
                         corner.env["USAGE_STREAM_ALERTS_TOPIC"])  # fmt: skip
    return [json.loads(r.value) for r in records]


def fired(records: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
    return {(r["account"], r["meter"], r["threshold"]) for r in records if r["kind"] == "fired"}


@pytest.mark.timeout(300)
def test_every_aggregation_crosses_several_in_one_batch_and_a_plan_change_re_evaluates(
    corner: Corner, collector: Service
) -> None:
    worker = corner.service("worker", **alerts_config(corner)).start()
    now = datetime.now(UTC) - timedelta(minutes=1)
    try:
        # 9 calls: 80%; once it fired, 7 more in one batch: 100% and 150% by that one batch
        post(collector, corner.write_key, [track("api_call", "a-1", now) for _ in range(9)])
        assert wait_until(lambda: fired(alerts(worker, corner)) == {("a-1", "calls", "80%")}, 60)
        post(collector, corner.write_key, [track("api_call", "a-1", now) for _ in range(7)])
        post(collector, corner.write_key, [
            track("export", "a-2", now, bytes=600), track("export", "a-2", now, bytes=500),
            track("storage", "a-3", now - timedelta(minutes=4), gb=7),
            *[track("page", "a-4", now, user=f"u{i}") for i in range(3)],
            track("seat_added", "a-5", now - timedelta(minutes=3)),
        ])  # fmt: skip
        expected = {("a-1", "calls", t) for t in ("80%", "100%", "150%")} | {
            ("a-2", "bytes", "100%"), ("a-2", "biggest", "500"), ("a-2", "mean", "300"),
            ("a-3", "last_gb", "5"), ("a-4", "users", "3"), ("a-5", "seats", "1"),
            ("a-2", "smallest", "400"), ("a-3", "gb_minutes", "20"),
        }  # fmt: skip
        assert wait_until(lambda: expected <= fired(alerts(worker, corner)), 60), alerts(
            worker, corner
        )
        one_batch = [r for r in alerts(worker, corner, account="a-1") if r["kind"] == "fired"]
        assert sorted(r["threshold"] for r in one_batch if r["with_others"]) == ["100%", "150%"]
        assert {r["threshold"]: r["quantity"] for r in one_batch}["150%"] == "16"
        # on the topic too, keyed by account, the same ids
        assert wait_until(lambda: fired(on_topic(corner)) >= expected, 30)
        assert {r["id"] for r in on_topic(corner)} == {r["id"] for r in alerts(worker, corner)}
        # upgraded: 80% of 1000 is far off, so the fired thresholds resolve, none fires again
        post(collector, corner.write_key, [group("a-1", now, "pro")])
        resolved = lambda: alerts(worker, corner, account="a-1", state="resolved")  # noqa: E731
        assert wait_until(lambda: len(resolved()) == 2, 30)
        assert sorted(r["threshold"] for r in resolved()) == ["100%", "80%"]
        assert {r["plan"] for r in resolved()} == {"pro"}
    finally:
        worker.stop()


@pytest.mark.timeout(300)
def test_late_in_grace_alerts_late_and_a_final_period_never(
    corner: Corner, collector: Service
) -> None:
    worker = corner.service("worker", **alerts_config(corner)).start()
    billing = Billing(timezone="America/New_York", grace_hours=2000)
    this = period_start(datetime.now(UTC), billing)
    last_month = period_start(this - timedelta(days=1), billing) + timedelta(days=3)
    long_ago = period_start(this - timedelta(days=200), billing) + timedelta(days=3)
    try:
        post(collector, corner.write_key, [track("api_call", "a-6", last_month) for _ in range(8)])
        post(collector, corner.write_key, [track("api_call", "a-7", long_ago) for _ in range(20)])
        assert wait_until(lambda: fired(alerts(worker, corner)) == {("a-6", "calls", "80%")}, 60)
        (record,) = alerts(worker, corner)
        assert record["late"] is True
        assert record["period"] == f"{last_month.astimezone(billing.zone):%Y-%m}"
    finally:
        worker.stop()


@pytest.mark.timeout(400)
def test_a_worker_killed_around_the_crossings_sends_each_once(
    corner: Corner, collector: Service
) -> None:
    rng = random.Random(5)
    config = alerts_config(corner)
    worker = corner.service("worker", **config).start()
    now = datetime.now(UTC) - timedelta(minutes=1)
    accounts = [f"k-{i}" for i in range(12)]
    totals: Counter[str] = Counter()
    try:
        for round_ in range(6):
            batch = [track("api_call", a, now) for a in accounts for _ in range(rng.randint(1, 4))]
            totals.update(e["groupId"] for e in batch)
            post(collector, corner.write_key, batch)
            if round_ in (1, 3, 4):  # before or after the crossings' writes: wherever it is
                worker.kill()
                worker.start()
        levels = {"80%": 8, "100%": 10, "150%": 15}
        expected = {(a, "calls", t) for a, n in totals.items() for t, at in levels.items()
                    if n >= at}  # fmt: skip
        assert wait_until(lambda: fired(alerts(worker, corner)) == expected, 90)
        records = alerts(worker, corner)
        assert len(records) == len({r["id"] for r in records}) == len(expected)
        # the topic may hold a record twice (sent again after a kill), never two ids for one
        topic = on_topic(corner)
        assert len({r["id"] for r in topic}) == len(expected)
        assert fired(topic) == expected
    finally:
        worker.stop()
