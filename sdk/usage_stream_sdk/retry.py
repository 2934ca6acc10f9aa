"""When to try a batch again: exponential backoff, full jitter, never before Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class Backoff:
    base: float = 0.5
    cap: float = 30.0
    # A guard against an absurd header, not a second budget.
    max_retry_after: float = 300.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Full jitter (uniform up to base·2^attempt, capped) spreads clients that failed
        together; the server's Retry-After is a floor, so a collector that always asks for one
        second still sees the backoff grow."""
        jittered = rng.uniform(0, min(self.cap, self.base * 2 ** min(attempt, 32)))
        if retry_after is None:
            return jittered
        return max(min(retry_after, self.max_retry_after), jittered)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header: delay-seconds or an HTTP-date; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:  # RFC 5322's "-0000" parses naive; it means UTC
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())
