"""Two workers on one local ClickHouse server split the `events` partitions; one is SIGKILLed
twice mid-stream and the other takes its partitions: every quantity exact, every activation once,
and the read API of either worker answers for the whole tenant."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from processors.metering.calendar import period_end, period_start
from schemas.config import Billing
from tests.conftest import Corner
from tests.harness import Service, bearer, http, wait_until
from tests.integration.test_metering_pipeline import (
    api_call,
    assert_reconciled,
    events_stored,
    expected_calls,
    post,
)

pytestmark = pytest.mark.integration


def track(name: str, account: str, when: datetime, user: str = "u-1") -> dict[str, Any]:
    return {
        "type": "track", "messageId": str(uuid.uuid4()), "userId": user, "groupId": account,
        "event": name, "timestamp": when.isoformat(), "properties": {},
    }  # fmt: skip


def calls(worker: Service, key: str, start: datetime, to: datetime) -> tuple[Decimal, Decimal]:
    query = f"from={start.isoformat()}&to={to.isoformat()}&by_customer=false"
    query = query.replace("+", "%2B")
    status, body = http("GET", f"{worker.url}/v1/meters/api_calls/usage?{query}", None,
                        bearer(key))  # fmt: skip
    assert status == 200, body
    if not body["data"]:
        return Decimal(0), Decimal(0)
    row = body["data"][0]
    return Decimal(row["quantity"]), Decimal(row["adjusted_quantity"])


def activated(worker: Service, key: str) -> list[str]:
    status, body = http("GET", f"{worker.url}/v1/activations?rule=team_activated&limit=10000",
                        None, bearer(key))  # fmt: skip
    assert status == 200, body
    return sorted(o["account"] for o in body if o["type"] == "activation")


@pytest.mark.timeout(420)
def test_two_workers_one_killed_twice_count_every_event_once(
    corner: Corner, collector: Service
) -> None:
    rng = random.Random(47)
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    start, to = now - timedelta(hours=2), now + timedelta(minutes=1)
    billing = Billing(timezone="UTC", grace_hours=72)  # the example configuration's
    closed = period_start(period_start(now, billing) - timedelta(days=40), billing)
    closed_end = period_end(closed, billing)
    events = [
        api_call(rng, start + timedelta(seconds=rng.uniform(0, 7000)), f"acct-{rng.randint(1, 30)}")
        for _ in range(36_000)
    ]
    late = [api_call(rng, closed + timedelta(days=3), f"acct-{rng.randint(1, 30)}")
            for _ in range(3_000)]  # fmt: skip
    teams = [f"team-{i}" for i in range(10)]
    signups = []
    for team in teams:
        began = start + timedelta(minutes=rng.randint(0, 30))
        signups += [track("signed_up", team, began)]
        signups += [track("report_created", team, began + timedelta(minutes=m)) for m in (1, 2, 3)]
        signups += [track("teammate_invited", team, began + timedelta(minutes=4))]
    every = events + late + signups
    rng.shuffle(every)
    batches = [every[i : i + 500] for i in range(0, len(every), 500)]
    first = corner.service("worker").start()
    second = corner.service("worker").start()
    try:
        for i, batch in enumerate(batches):
            post(collector, corner.write_key, batch)
            if i % 10 == 3:
                post(collector, corner.write_key, batch)  # sent again: duplicates
            if i in (20, 50):  # SIGKILL mid-stream; the other takes its partitions
                first.kill()
                first.start()
        expected = Decimal(expected_calls(events))
        expected_late = Decimal(expected_calls(late))
        for reader in (first, second):
            assert wait_until(
                lambda r=reader: calls(r, corner.read_key, start, to) == (expected, expected), 180
            )
            assert calls(reader, corner.read_key, closed, closed_end) == (0, expected_late)
            assert wait_until(lambda r=reader: activated(r, corner.read_key) == teams, 60)
            assert events_stored(reader, corner.read_key) == len(every)
        # reconciled beside the running workers: the CLI is one more client of the server
        assert_reconciled(corner, start, to)
    finally:
        first.stop()
        second.stop()
