"""The sender's loop: usage alerts read from Kafka in a consumer group of its own, recorded as
pending deliveries in the log, then handed to their endpoints' lanes.

Offsets are committed only once every record up to them has its deliveries in the log, so a
sender killed at any moment loses nothing: what it had not recorded is read again, and what it
had recorded but not delivered is resumed from the log by whichever sender is assigned the
partition. A record read again, or sent again by the worker, is recognised by its id in the
log and not delivered twice; a delivery tried again carries the same `webhook-id`.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from kafka import ConsumerRebalanceListener, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from processors.delivery.retry import BACKOFF as STORAGE_BACKOFF
from processors.webhooks.deliveries import DeliveryLog, recorded
from processors.webhooks.lanes import Lane, Post, utc_now
from processors.webhooks.metrics import WebhookMetrics
from processors.webhooks.model import (
    Attempt,
    Delivery,
    DeliveryStatus,
    Endpoint,
    InvalidRecord,
    Outcome,
    parse_alert,
)
from processors.webhooks.transport import post

log = logging.getLogger(__name__)
T = TypeVar("T")
# Pending deliveries are resumed if recorded within the longest retry_for and this before it:
# a sender stopped for longer than that finds them still pending in the log (re-send them)
RESUME_SLACK = timedelta(days=35)
STOP_SECONDS = 5.0  # for lanes to finish the attempt in flight; the log has the rest


class Sender:
    def __init__(
        self,
        bootstrap: str,
        topic: str,
        group: str,
        endpoints: list[Endpoint],
        deliveries: DeliveryLog,
        metrics: WebhookMetrics,
        backoff_base: float,
        backoff_cap: float,
        send: Post = post,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._bootstrap, self._topic, self._group = bootstrap, topic, group
        self._endpoints = endpoints
        self._log = deliveries
        self._metrics = metrics
        self._now = clock
        self._owned: set[int] = set()
        self._owned_lock = threading.Lock()
        self._stop = threading.Event()
        self._rng = random.Random()
        self.ready = threading.Event()
        self.lanes = {
            e.name: Lane(e, deliveries, metrics, self.owns, backoff_base, backoff_cap, send, clock)
            for e in endpoints
        }
        longest = max((e.config.retry_for for e in endpoints), default=timedelta(0))
        self._lookback = longest + RESUME_SLACK

    def owns(self, partition: int) -> bool:
        with self._owned_lock:
            return partition in self._owned

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Consume until `stop()`; then stop the lanes (the log keeps what they held)."""
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap.split(","),
            group_id=self._group,
            client_id="usage-stream-webhooks",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            allow_auto_create_topics=False,  # the topic is made compacted, not by accident
            # a sender killed is replaced within seconds, its partitions resumed by another
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
            max_poll_records=500,
        )
        consumer.subscribe([self._topic], listener=_Rebalance(self))
        for lane in self.lanes.values():
            lane.start()
        try:
            while not self._stop.is_set():
                batch = consumer.poll(timeout_ms=500)
                if batch:
                    self._take(consumer, batch)
        finally:
            for lane in self.lanes.values():
                lane.stop()
            consumer.close(autocommit=False)
            for lane in self.lanes.values():
                lane.join(STOP_SECONDS / max(1, len(self.lanes)))

    def _take(self, consumer: KafkaConsumer, batch: dict[TopicPartition, list[Any]]) -> None:
        """Record the batch's new deliveries, commit its offsets, hand the deliveries over."""
        records = [(tp.partition, r) for tp in sorted(batch) for r in batch[tp]]
        try:
            new = self.deliveries_of(records)
            self._durably(lambda: self._log.write((d, recorded(d, self._url(d))) for d in new))
        except _Stopped:
            return  # not committed: read again on restart
        offsets = {tp: OffsetAndMetadata(rs[-1].offset + 1, "", -1) for tp, rs in batch.items()}
        try:
            consumer.commit(offsets)
        except KafkaError as exc:  # a rebalance: the new owner reads them again, sees them logged
            log.warning("could not commit %s (%r); they will be read again", offsets, exc)
        for delivery in new:
            self.lanes[delivery.endpoint].add(delivery)

    def deliveries_of(self, records: Iterable[tuple[int, Any]]) -> list[Delivery]:
        """The deliveries that records (partition, ConsumerRecord) call for and the log does
        not hold yet, in record order."""
        wanted = []
        for partition, record in records:
            try:
                alert = parse_alert(record.value)
            except InvalidRecord as why:
                log.warning(
                    "%s[%d]@%d is not a usage alert (%s): skipped",
                    self._topic, partition, record.offset, why,
                )  # fmt: skip
                self._metrics.records("invalid")
                continue
            targets = [e for e in self._endpoints if e.wants(alert)]
            if not targets:
                self._metrics.records("unmatched")
                continue
            wanted.append((partition, record.offset, alert, targets))
        if not wanted:
            return []
        tenants, ids = {a.tenant for _, _, a, _ in wanted}, {a.id for _, _, a, _ in wanted}
        known = self._durably(lambda: self._log.known(tenants, ids))
        now, out = self._now(), []
        for partition, offset, alert, targets in wanted:
            fresh = [e for e in targets if (e.name, alert.id) not in known]
            self._metrics.records("queued" if fresh else "seen")
            for endpoint in fresh:
                known.add((endpoint.name, alert.id))  # a record twice in one batch: once
                out.append(
                    Delivery(
                        endpoint=endpoint.name, tenant=alert.tenant, record_id=alert.id,
                        kind=alert.kind, account=alert.account, payload=alert.body,
                        created_at=now, next_attempt_at=now, topic=self._topic,
                        partition=partition, offset=offset,
                    )
                )  # fmt: skip
        return out

    def _url(self, delivery: Delivery) -> str:
        return self.lanes[delivery.endpoint].endpoint.config.shown_url

    def assigned(self, partitions: set[int]) -> None:
        """Take the partitions over: resume their pending deliveries from the log."""
        with self._owned_lock:
            self._owned |= partitions
        since = self._now() - self._lookback
        try:
            pending = self._durably(lambda: self._log.pending(self._topic, partitions, since))
        except _Stopped:
            return
        resumed = 0
        for delivery in pending:
            lane = self.lanes.get(delivery.endpoint)
            if lane is None or lane.endpoint.config.tenant != delivery.tenant:
                self._give_up(delivery)
            elif lane.add(delivery):
                resumed += 1
        if resumed:
            log.info("resumed %d pending deliveries of partitions %s", resumed, sorted(partitions))
        self.ready.set()

    def revoked(self, partitions: set[int]) -> None:
        with self._owned_lock:
            self._owned -= partitions
        for lane in self.lanes.values():
            lane.drop(partitions)

    def _give_up(self, delivery: Delivery) -> None:
        """A pending delivery whose endpoint is not configured (for its tenant) any more."""
        why = f"endpoint {delivery.endpoint!r} of tenant {delivery.tenant!r} is not configured"
        log.warning("%s: delivery of %s failed", why, delivery.record_id)
        attempt = Attempt(
            delivery.attempts, DeliveryStatus.FAILED, self._now(), Outcome(0, why, 0.0), None, ""
        )
        try:
            self._durably(lambda: self._log.write([(delivery, attempt)]))
        except _Stopped:
            return
        self._metrics.deliveries.labels(delivery.endpoint, DeliveryStatus.FAILED.value).inc()

    def _durably(self, call: Callable[[], T]) -> T:
        """A log read or write, tried until it succeeds; _Stopped if stopped first."""
        failures = 0
        while True:
            try:
                return call()
            except Exception as exc:  # storage fails in many ways; all are retried alike
                delay = STORAGE_BACKOFF.delay(failures, None, self._rng)
                log.warning("delivery log: %r; trying again in %.1f s", exc, delay)
                failures += 1
                if self._stop.wait(delay):
                    raise _Stopped from exc


class _Stopped(Exception):
    """Stopped while the delivery log did not answer: leave the batch uncommitted."""


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, sender: Sender) -> None:
        self._sender = sender

    def on_partitions_revoked(self, revoked: Any) -> None:
        self._sender.revoked({tp.partition for tp in revoked})

    def on_partitions_assigned(self, assigned: Any) -> None:
        self._sender.assigned({tp.partition for tp in assigned})
