"""When a failed delivery is tried again: backoff with full jitter, Retry-After as a floor on
429 and 503 (seconds or an HTTP date), the endpoint's retry_for as the deadline."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from usage_stream_sdk.retry import parse_retry_after

from processors.webhooks.model import Delivery, DeliveryStatus, Outcome
from processors.webhooks.policy import after_attempt, backoff_for

START = datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC)
DAY = timedelta(hours=24)
BACKOFF = backoff_for(2.0, 1800.0, DAY)


def delivery(attempts: int = 0) -> Delivery:
    return Delivery(
        endpoint="0", tenant="acme", record_id="r-1", kind="fired", account="acct-1",
        payload=b"{}", created_at=START, next_attempt_at=START, topic="usage_alerts",
        partition=0, offset=0, attempts=attempts,
    )  # fmt: skip


def decide(
    outcome: Outcome, now: datetime, attempts: int = 0, seed: int = 1
) -> tuple[DeliveryStatus, datetime | None]:
    return after_attempt(delivery(attempts), outcome, now, DAY, BACKOFF, random.Random(seed))


def test_a_2xx_is_delivered() -> None:
    for code in (200, 202, 204):
        assert decide(Outcome(code, "", 0.1), START) == (DeliveryStatus.DELIVERED, None)


@pytest.mark.parametrize("attempts", [0, 1, 5, 10, 40])
def test_failures_back_off_exponentially_with_full_jitter_capped(attempts: int) -> None:
    ceiling = min(1800.0, 2.0 * 2**attempts)
    delays = []
    for seed in range(200):
        status, at = decide(Outcome(500, "HTTP 500", 0.1), START, attempts, seed)
        assert status is DeliveryStatus.PENDING and at is not None
        delays.append((at - START).total_seconds())
    assert all(0 <= d <= ceiling for d in delays)
    assert max(delays) > 0.8 * ceiling and min(delays) < 0.2 * ceiling  # spread over it all


def test_a_timeout_or_refusal_is_retried_like_a_5xx() -> None:
    status, at = decide(Outcome(0, "no answer within 10 s", 10.0), START)
    assert (
        status is DeliveryStatus.PENDING and at is not None and at <= START + timedelta(seconds=2)
    )


@pytest.mark.parametrize("code", [429, 503])
def test_retry_after_seconds_is_a_floor_on_429_and_503(code: int) -> None:
    status, at = decide(Outcome(code, "busy", 0.1, retry_after="120"), START)
    assert status is DeliveryStatus.PENDING and at == START + timedelta(seconds=120)


def test_retry_after_as_an_http_date() -> None:
    when = format_datetime(START + timedelta(minutes=5), usegmt=True)
    status, at = decide(Outcome(503, "down", 0.1, retry_after=when), START)
    assert status is DeliveryStatus.PENDING and at == START + timedelta(minutes=5)


def test_retry_after_is_ignored_on_other_statuses_and_when_unreadable() -> None:
    for outcome in (Outcome(500, "", 0.1, retry_after="600"), Outcome(429, "", 0.1, "soon")):
        _, at = decide(outcome, START)
        assert at is not None and at <= START + timedelta(seconds=2)


def test_the_last_try_falls_at_the_deadline_and_a_failure_there_is_final() -> None:
    late = START + DAY - timedelta(seconds=1)
    status, at = decide(Outcome(500, "", 0.1), late, attempts=30)
    assert (status, at) == (DeliveryStatus.PENDING, START + DAY)
    assert decide(Outcome(500, "", 0.1), START + DAY, attempts=31) == (DeliveryStatus.FAILED, None)


def test_a_retry_after_past_the_deadline_gives_up_now() -> None:
    late = START + DAY - timedelta(minutes=1)
    outcome = Outcome(429, "slow down", 0.1, retry_after="3600")
    assert decide(outcome, late, attempts=3) == (DeliveryStatus.FAILED, None)


def test_a_delivery_resumed_after_its_deadline_still_gets_one_try() -> None:
    """Decisions follow tries: a sender down past retry_for tries once before giving up."""
    assert decide(Outcome(200, "", 0.1), START + 2 * DAY) == (DeliveryStatus.DELIVERED, None)


def test_retry_after_parsing() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 1.5 ", now) == 1.5
    assert parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now) == 30.0
    assert parse_retry_after("Wed, 31 Dec 2025 00:00:00 GMT", now) == 0.0  # past: now
    assert parse_retry_after("-3", now) == 0.0
    for bad in (None, "", "soon", "Thu, 99 Foo 2026"):
        assert parse_retry_after(bad, now) is None
