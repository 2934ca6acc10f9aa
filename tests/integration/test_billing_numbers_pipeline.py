"""Invoiced held quantities end to end, the worker SIGKILLed on the way: a seat reported after its
month closed bills in the open month; the open month is held to the moment of the answer."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest

from processors.metering.calendar import period_end, period_start
from schemas.config import EXAMPLE_CONFIG, Billing
from tests.conftest import Corner
from tests.harness import Service, basic, http, wait_until
from tests.integration.test_metering_pipeline import usage

pytestmark = pytest.mark.integration

UTC_BILLING = Billing(timezone="UTC", grace_hours=72)  # the example configuration's
MS = timedelta(milliseconds=1)
NINE = Decimal("0.000000001")


def track(name: str, account: str, when: datetime, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track", "messageId": str(uuid.uuid4()), "userId": "u-1", "groupId": account,
        "event": name, "timestamp": when.isoformat(), "properties": properties,
    }  # fmt: skip


def post(collector: Service, key: str, events: list[dict[str, Any]]) -> None:
    """Without sentAt: the times are taken as sent, not corrected by the transit's milliseconds."""
    status, answer = http("POST", f"{collector.url}/v1/batch", {"batch": events}, basic(key))
    assert status == 200, answer


def held(span: timedelta, unit: timedelta) -> str:
    """One seat (or GB) held for `span`, in `unit`s, as the API writes it."""
    text = format((Decimal(span // MS) / Decimal(unit // MS)).quantize(NINE, ROUND_HALF_EVEN), "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def rows(worker: Service, key: str, meter: str, start: datetime, to: datetime) -> dict[str, Any]:
    answer = usage(worker, key, meter, **{"from": start.isoformat(), "to": to.isoformat()})
    answer["by"] = {r["customer"]: r for r in answer["data"]}
    return answer


def test_a_late_seat_bills_in_the_open_month_whatever_kills_the_worker(
    corner: Corner, worker: Service, collector: Service
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    month = period_start(now, UTC_BILLING)
    closed = period_start(month - timedelta(days=40), UTC_BILLING)  # final weeks ago
    day = closed + timedelta(days=4)
    removed = month + (now - month) / 2
    batches = [
        [track("seat_added", "late", day), track("storage_reported", "late", day, gb=8)],
        [track("seat_added", "steady", day)],
        [track("seat_removed", "steady", removed)],
    ]
    post(collector, corner.write_key, batches[0])
    worker.kill()  # SIGKILL, whatever it was writing
    post(collector, corner.write_key, batches[1])
    worker.start()
    post(collector, corner.write_key, batches[2])
    worker.kill()
    worker.start()

    closed_end = period_end(closed, UTC_BILLING)

    def seen() -> Any:
        found = rows(worker, corner.read_key, "seat_days", closed, closed_end)["by"]
        return found if sorted(found) == ["late", "steady"] else None

    old = wait_until(seen, 60)
    for account in ("late", "steady"):  # the closed month's invoice never changes
        assert old[account]["quantity"] == "0" and old[account]["late_events"] == 1
        assert old[account]["adjusted_quantity"] == held(closed_end - day, timedelta(days=1))
    assert wait_until(
        lambda: (
            rows(worker, corner.read_key, "seat_days", month, now)["by"]
            .get("steady", {})
            .get("events")
        ),
        30,
    )
    end = period_end(month, UTC_BILLING)
    answer = rows(worker, corner.read_key, "seat_days", month, end)
    as_of = datetime.fromisoformat(answer["as_of"])
    late, steady = answer["by"]["late"], answer["by"]["steady"]
    # carried in from the closed month, held to the moment of the answer, never negative
    assert late["quantity"] == late["adjusted_quantity"] == held(as_of - month, timedelta(days=1))
    assert late["projected_quantity"] == held(end - month, timedelta(days=1))
    assert steady["quantity"] == held(removed - month, timedelta(days=1))
    assert not answer["final"] and not late["final"]
    seats = rows(worker, corner.read_key, "seats", month, end)
    assert seats["by"]["late"]["projected_quantity"] == "1"  # a seat the whole month
    assert seats["by"]["late"]["quantity"] == held(
        datetime.fromisoformat(seats["as_of"]) - month, end - month
    )
    gb = rows(worker, corner.read_key, "storage_gb_hours", month, end)["by"]["late"]
    assert gb["projected_quantity"] == held(8 * (end - month), timedelta(hours=1))


def call(when: datetime) -> dict[str, Any]:
    return track("api_call", "acct-1", when, status=200, endpoint="/v1/search")


def test_a_period_is_final_only_once_the_worker_caught_up(corner: Corner) -> None:
    """The worker is down when the grace period ends, with events received before it waiting in
    Kafka: the period reads final only once they are folded, and never changes after."""
    now = datetime.now(UTC)
    month = period_start(now, UTC_BILLING)
    closes = now + timedelta(seconds=25)  # last month becomes final then
    grace = (closes - month) / timedelta(hours=1)
    text = EXAMPLE_CONFIG.read_text().replace("grace_hours = 72", f"grace_hours = {grace}")
    assert f"grace_hours = {grace}" in text
    (corner.home / "usage-stream.toml").write_text(text)
    corner.env["USAGE_STREAM_CONFIG_FILE"] = str(corner.home / "usage-stream.toml")
    corner.env["USAGE_STREAM_RECEIPT_SLACK_SECONDS"] = "1"
    last_month = period_start(month - timedelta(days=1), UTC_BILLING)
    when = month - timedelta(hours=5)
    collector = corner.service("collector").start()
    worker = corner.service("worker").start()

    def read() -> tuple[bool, str | None, str | None]:
        answer = rows(worker, corner.read_key, "api_calls", last_month, month)
        row = answer["by"].get("acct-1", {})
        return answer["final"], row.get("quantity"), row.get("adjusted_quantity")

    try:
        post(collector, corner.write_key, [call(when) for _ in range(3)])
        assert wait_until(lambda: read() == (False, "3", "3"), 30)
        worker.kill()
        post(collector, corner.write_key, [call(when) for _ in range(4)])  # received in time
        wait_until(lambda: datetime.now(UTC) > closes + timedelta(seconds=2), 60)
        post(collector, corner.write_key, [call(when) for _ in range(2)])  # late
        worker.start(ready_path="/healthz")  # answering, before it holds any partition
        reads = [read()]
        assert reads[0] == (False, "3", "3")  # the 4 received in time are still in Kafka
        assert wait_until(lambda: reads.append(read()) or reads[-1] == (True, "7", "9"), 60)
        worker.kill()  # and again, right after it said final
        worker.start(ready_path="/healthz")
        reads += [read() for _ in range(5)]
        assert reads[-1] == (True, "7", "9")
        # every read that said final gave the same invoice; the late ones only adjust it
        assert {r[1] for r in reads if r[0]} == {"7"}
    finally:
        worker.stop()
        collector.stop()
