"""When a failed delivery is tried again, and when it is given up: pure, clock and dice given.

Exponential backoff with full jitter (the SDK's Backoff, the worker's too), never before the
endpoint's Retry-After on 429 or 503, tried for the endpoint's `retry_for` from the moment the
delivery was recorded; the last try falls at that deadline, and a failure then is final.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from usage_stream_sdk.retry import Backoff, parse_retry_after

from processors.webhooks.model import Delivery, DeliveryStatus, Outcome

# Statuses whose Retry-After says when to come back (RFC 9110: 503; RFC 6585: 429)
RETRY_AFTER_STATUSES = frozenset({429, 503})


def backoff_for(base: float, cap: float, retry_for: timedelta) -> Backoff:
    """The backoff of one endpoint: a Retry-After is honoured up to the whole `retry_for`."""
    return Backoff(base=base, cap=cap, max_retry_after=retry_for.total_seconds())


def after_attempt(
    delivery: Delivery,
    outcome: Outcome,
    now: datetime,
    retry_for: timedelta,
    backoff: Backoff,
    rng: random.Random,
) -> tuple[DeliveryStatus, datetime | None]:
    """The delivery's status after its try number `delivery.attempts + 1` came to `outcome`
    at `now`, and when to try next (None unless still pending)."""
    if outcome.ok:
        return DeliveryStatus.DELIVERED, None
    deadline = delivery.created_at + retry_for
    if now >= deadline:
        return DeliveryStatus.FAILED, None
    asked = None
    if outcome.status_code in RETRY_AFTER_STATUSES:
        asked = parse_retry_after(outcome.retry_after, now)
    if asked is not None and now + timedelta(seconds=asked) > deadline:
        return DeliveryStatus.FAILED, None  # not allowed back before the deadline
    delay = backoff.delay(delivery.attempts, asked, rng)
    return DeliveryStatus.PENDING, min(now + timedelta(seconds=delay), deadline)
