"""The bounded queue between callers and the sender thread; it hands out batches when due."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

# Room for the envelope around the messages: {"batch":[...],"sentAt":"..."}.
ENVELOPE_BYTES = 128


@dataclass(frozen=True)
class Item:
    message_id: str
    raw: bytes
    enqueued: float


class Outbox:
    """Holds at most `capacity` messages. A batch is due when it is full by count or bytes,
    when its oldest message has waited `max_wait`, or at once after `urge` or `close`.

    `pending` counts messages put and not yet `done`, in the queue or in flight, so that
    `wait_idle` means "everything was delivered or given up on", not merely "taken".
    """

    def __init__(self, capacity: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._capacity = capacity
        self._clock = clock
        self._items: deque[Item] = deque()
        self._bytes = 0
        self._in_flight = 0
        self._urgent = False
        self._closed = False
        self._cond = threading.Condition()

    @property
    def pending(self) -> int:
        with self._cond:
            return len(self._items) + self._in_flight

    def put(self, message_id: str, raw: bytes) -> bool:
        """False when full or closed: the caller must learn it, never a silent drop."""
        with self._cond:
            if self._closed or len(self._items) >= self._capacity:
                return False
            self._items.append(Item(message_id, raw, self._clock()))
            self._bytes += len(raw) + 1
            self._cond.notify_all()
            return True

    def take(self, max_count: int, max_bytes: int, max_wait: float) -> list[Item]:
        """Block until a batch is due and return it; [] once closed and empty."""
        budget = max(1, max_bytes - ENVELOPE_BYTES)
        with self._cond:
            while True:
                timeout: float | None = None
                if self._items:
                    age = self._clock() - self._items[0].enqueued
                    full = len(self._items) >= max_count or self._bytes >= budget
                    if full or self._urgent or self._closed or age >= max_wait:
                        return self._pop(max_count, budget)
                    timeout = max_wait - age
                elif self._closed:
                    return []
                else:
                    self._urgent = False
                self._cond.wait(timeout)

    def _pop(self, max_count: int, budget: int) -> list[Item]:
        batch: list[Item] = []
        size = 0
        while self._items and len(batch) < max_count:
            cost = len(self._items[0].raw) + 1
            if batch and size + cost > budget:
                break
            item = self._items.popleft()
            batch.append(item)
            size += cost
            self._bytes -= cost
        self._in_flight += len(batch)
        return batch

    def done(self, count: int) -> None:
        """`count` taken messages were delivered or given up on."""
        with self._cond:
            self._in_flight -= count
            self._cond.notify_all()

    def drain(self) -> list[Item]:
        """Take everything still queued, as in flight (call `done` after reporting it)."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            self._bytes = 0
            self._in_flight += len(items)
            return items

    def wait_idle(self, timeout: float | None) -> bool:
        """Hand out what is queued now, and wait until nothing is pending; False on timeout."""
        with self._cond:
            self._urgent = True
            self._cond.notify_all()
            return self._cond.wait_for(
                lambda: not self._items and self._in_flight == 0, timeout=timeout
            )

    def close(self) -> None:
        """No more puts; `take` hands out the rest, then returns []."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
