"""One lane per endpoint: a thread with its own queue of deliveries, earliest due first, so a
slow or dead endpoint holds up only its own deliveries, never another endpoint's."""

from __future__ import annotations

import heapq
import itertools
import logging
import random
import threading
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import UTC, datetime

from processors.delivery.retry import BACKOFF as STORAGE_BACKOFF
from processors.webhooks.deliveries import DeliveryLog
from processors.webhooks.metrics import WebhookMetrics
from processors.webhooks.model import Attempt, Delivery, DeliveryStatus, Endpoint, Outcome
from processors.webhooks.policy import after_attempt, backoff_for
from processors.webhooks.signing import Signer
from processors.webhooks.transport import post

log = logging.getLogger(__name__)

Post = Callable[[str, bytes, dict[str, str], float], Outcome]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Lane(threading.Thread):
    """Tries one endpoint's deliveries one at a time, each when it is due; writes every
    attempt to the log before deciding what comes next. `owns(partition)` says whether the
    sender still holds the Kafka partition a delivery was read from: once it is revoked,
    another sender resumes the delivery from the log."""

    def __init__(
        self,
        endpoint: Endpoint,
        deliveries: DeliveryLog,
        metrics: WebhookMetrics,
        owns: Callable[[int], bool],
        backoff_base: float,
        backoff_cap: float,
        send: Post = post,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        super().__init__(name=f"webhooks-{endpoint.name}", daemon=True)
        self.endpoint = endpoint
        self._log = deliveries
        self._metrics = metrics
        self._owns = owns
        self._signer = Signer(endpoint.config.secret)
        self._backoff = backoff_for(backoff_base, backoff_cap, endpoint.config.retry_for)
        self._send = send
        self._now = clock
        self._rng = random.Random()
        self._cond = threading.Condition()
        self._queue: list[tuple[datetime, int, Delivery]] = []
        self._order = itertools.count()
        # record ids queued or in flight, with when each delivery began
        self._held: dict[str, datetime] = {}
        self._stopping = False
        metrics.watch_lane(endpoint.name, self.oldest_age)

    def add(self, delivery: Delivery) -> bool:
        """Queue a delivery; False (and nothing done) if this lane holds it already."""
        with self._cond:
            if delivery.record_id in self._held:
                return False
            self._push(delivery)
            self._cond.notify()
            return True

    def drop(self, partitions: Collection[int]) -> None:
        """Forget the queued deliveries read from these partitions (revoked: another sender
        resumes them from the log). One in flight finishes and is then let go."""
        with self._cond:
            kept = [e for e in self._queue if e[2].partition not in partitions]
            for _, _, delivery in self._queue:
                if delivery.partition in partitions:
                    self._held.pop(delivery.record_id, None)
            self._queue = kept
            heapq.heapify(self._queue)

    def stop(self) -> None:
        with self._cond:
            self._stopping = True
            self._cond.notify()

    def oldest_age(self) -> float:
        """Seconds since the oldest delivery this lane holds began; 0 when it holds none."""
        with self._cond:
            oldest = min(self._held.values(), default=None)
        return 0.0 if oldest is None else max(0.0, (self._now() - oldest).total_seconds())

    def __len__(self) -> int:
        with self._cond:
            return len(self._held)

    def _push(self, delivery: Delivery) -> None:
        self._held[delivery.record_id] = delivery.created_at
        heapq.heappush(self._queue, (delivery.next_attempt_at, next(self._order), delivery))

    def run(self) -> None:
        while True:
            with self._cond:
                while not self._stopping:
                    if self._queue:
                        wait = (self._queue[0][0] - self._now()).total_seconds()
                        if wait <= 0:
                            break
                        self._cond.wait(min(wait, 60.0))
                    else:
                        self._cond.wait()
                if self._stopping:
                    return
                _, _, delivery = heapq.heappop(self._queue)
            try:
                self._attempt(delivery)
            except Exception:  # a bug must not silently stop every later delivery of the lane
                log.exception("webhook %s: attempt at %s failed", self.endpoint.name, delivery)
                with self._cond:
                    self._held.pop(delivery.record_id, None)

    def _attempt(self, delivery: Delivery) -> None:
        config = self.endpoint.config
        number = delivery.attempts + 1
        at = self._now()
        headers = self._signer.headers(delivery.record_id, delivery.payload, at)
        outcome = self._send(config.url, delivery.payload, headers, config.timeout_seconds)
        now = self._now()
        status, next_at = after_attempt(
            delivery, outcome, now, config.retry_for, self._backoff, self._rng
        )
        attempt = Attempt(number, status, at, outcome, next_at, config.shown_url)
        self._metrics.attempted(self.endpoint.name, outcome, status)
        self._report(delivery, attempt)
        if not self._written(delivery, attempt):
            with self._cond:  # stopping: the log still has it pending, resumed on restart
                self._held.pop(delivery.record_id, None)
            return
        with self._cond:
            if (
                status is DeliveryStatus.PENDING
                and self._owns(delivery.partition)
                and not self._stopping
            ):
                self._push(replace(delivery, attempts=number, next_attempt_at=next_at or now))
            else:
                self._held.pop(delivery.record_id, None)

    def _written(self, delivery: Delivery, attempt: Attempt) -> bool:
        """Write the attempt, trying again while ClickHouse fails; False if stopped first."""
        failures = 0
        while True:
            try:
                self._log.write([(delivery, attempt)])
                return True
            except Exception as exc:  # storage fails in many ways; all are retried alike
                delay = STORAGE_BACKOFF.delay(failures, None, self._rng)
                log.warning(
                    "webhook %s: could not log attempt %d of %s (%r); again in %.1f s",
                    self.endpoint.name, attempt.number, delivery.record_id, exc, delay,
                )  # fmt: skip
                failures += 1
                with self._cond:
                    if self._stopping or self._cond.wait_for(lambda: self._stopping, delay):
                        return False

    def _report(self, delivery: Delivery, attempt: Attempt) -> None:
        outcome, name = attempt.outcome, self.endpoint.name
        if attempt.status is DeliveryStatus.DELIVERED:
            log.info(
                "webhook %s: %s delivered (HTTP %d, attempt %d, %.3f s)",
                name, delivery.record_id, outcome.status_code, attempt.number, outcome.latency,
            )  # fmt: skip
        elif attempt.status is DeliveryStatus.FAILED:
            log.warning(
                "webhook %s: %s failed after %d attempts, last: %s",
                name, delivery.record_id, attempt.number, outcome.error,
            )  # fmt: skip
        else:
            log.info(
                "webhook %s: %s attempt %d: %s; next at %s",
                name, delivery.record_id, attempt.number, outcome.error,
                attempt.next_attempt_at.isoformat() if attempt.next_attempt_at else "-",
            )  # fmt: skip
