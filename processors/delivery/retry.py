"""Trying a write until it holds: what is not durable yet blocks its offsets, never skips them."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from usage_stream_sdk.retry import Backoff

T = TypeVar("T")
BACKOFF = Backoff(base=0.5, cap=30.0)


async def retry_forever(
    attempt: Callable[[], Awaitable[T]],
    on_failure: Callable[[Exception, float], None],
    give_up: Callable[[], None] = lambda: None,
    backoff: Backoff = BACKOFF,
) -> T:
    """Await `attempt` until it returns; after each failure tell `on_failure` (the error, the
    delay) and wait, with the SDK's jittered exponential backoff, so workers that failed
    together do not retry together. `give_up` runs before each retry: it raises to stop (the
    batch's partitions are being revoked)."""
    rng = random.Random()
    failures = 0
    while True:
        try:
            return await attempt()
        except Exception as exc:  # storage fails in many ways; all are retried alike
            delay = backoff.delay(failures, None, rng)
            on_failure(exc, delay)
            await asyncio.sleep(delay)
            give_up()
            failures += 1
