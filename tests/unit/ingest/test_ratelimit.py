"""The per-write-key token bucket on a fake clock."""

from __future__ import annotations

import pytest

from ingest.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_key_may_burst_then_waits_for_its_debt_to_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=10, burst=20, clock=clock)
    assert limiter.retry_after("k") is None
    limiter.charge("k", 50)  # one large batch overdraws by 30
    assert limiter.retry_after("k") == 4  # (1 - (-30)) / 10 = 3.1 → 4 whole seconds
    clock.now = 3.0
    assert limiter.retry_after("k") == 1
    clock.now = 3.1
    assert limiter.retry_after("k") is None


def test_keys_are_independent_and_refill_stops_at_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rate=1, burst=2, clock=clock)
    limiter.charge("a", 2)
    assert limiter.retry_after("a") == 1
    assert limiter.retry_after("b") is None
    clock.now = 1000.0
    limiter.charge("a", 2)  # refilled to 2, not to 1000
    assert limiter.retry_after("a") == 1


def test_nonsense_rates_are_refused() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)
