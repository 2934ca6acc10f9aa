"""Per-write-key rate limits: a token bucket of events that a large batch may overdraw."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """`rate` events per second per key, bursts up to `burst`.

    A request is let in while its key's bucket holds at least one token, and its events are
    charged afterwards, even past zero: a batch larger than the bucket still gets through once,
    and the debt it leaves makes the key wait. Counting events, not requests, is what protects
    Kafka and ClickHouse. Buckets exist only for known write keys, so memory stays bounded.
    """

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.setdefault(key, _Bucket(self._burst, now))
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        return bucket

    def retry_after(self, key: str) -> int | None:
        """None when `key` may send now; else whole seconds until it may (Retry-After)."""
        with self._lock:
            bucket = self._refilled(key)
            if bucket.tokens >= 1:
                return None
            return max(1, math.ceil((1 - bucket.tokens) / self._rate))

    def charge(self, key: str, events: int) -> None:
        with self._lock:
            self._refilled(key).tokens -= events
