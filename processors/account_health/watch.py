"""Accounts crossing the health threshold, each crossing one record on the `account_health` topic.

The topic is compacted and keyed by tenant:account; its last record of an account says on which
side of the threshold the account was last reported, and how many crossings it had. That is the
watch's only memory: it is read back from Kafka before the first check (and after any pause), and
a record is remembered only once Kafka holds it (acks=all). A worker killed before the ack
reports the crossing again on its next check, one killed after it finds the record and does not:
one record per crossing, with an id (tenant:account:n) a consumer can recognise.

One worker watches: the one holding partition 0 of `events`, so a group of workers reports once.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from processors.account_health.query import scores, tenants
from processors.account_health.score import Score
from processors.storage.clickhouse import ClickHouse
from schemas.config import ProductConfig
from schemas.health import Health

log = logging.getLogger(__name__)
Side = tuple[int, bool]  # (crossings so far, below the threshold)
ABOVE: Side = (0, False)  # an account never reported is taken as healthy


def crossing(tenant: str, found: Score, last: Side, health: Health, at: datetime) -> dict[str, Any]:
    n = last[0] + 1
    below = found.score < health.threshold
    return {
        "type": "account_health",
        "id": f"{tenant}:{found.account}:{n}",
        "tenant": tenant,
        "account": found.account,
        "crossing": n,
        "direction": "down" if below else "up",
        "below": below,
        "score": found.score,
        "threshold": health.threshold,
        "components": found.components,
        "at": at.isoformat(),
    }


def read_sides(bootstrap: str, topic: str) -> dict[tuple[str, str], Side]:
    """Every account's last reported side, from the topic's beginning to its end now."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap.split(","), enable_auto_commit=False)
    try:
        found = consumer.partitions_for_topic(topic)
        if not found:  # no metadata yet: reading nothing would report every crossing again
            raise RuntimeError(f"topic {topic!r} has no partitions known yet")
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        sides: dict[tuple[str, str], Side] = {}
        while any(consumer.position(tp) < end for tp, end in ends.items()):
            for records in consumer.poll(timeout_ms=1000).values():
                for record in records:
                    try:
                        value = json.loads(record.value)
                        key = (value["tenant"], value["account"])
                        sides[key] = (int(value["crossing"]), bool(value["below"]))
                    except (ValueError, TypeError, KeyError):  # not a record of ours
                        log.warning("%s: skipping a record that is not a crossing", topic)
        return sides
    finally:
        consumer.close()


class HealthWatch:
    """Every `check_seconds`, scores the accounts of every tenant and reports the crossings."""

    def __init__(
        self,
        clickhouse: ClickHouse,
        config: ProductConfig,
        health: Health,
        bootstrap: str,
        topic: str,
        watching: Callable[[], bool],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._ch, self._config, self._health = clickhouse, config, health
        self._bootstrap, self._topic = bootstrap, topic
        self._watching = watching
        self._clock = clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="health-watch", daemon=True)
        self._producer: KafkaProducer | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self._producer is not None:
            self._producer.close(timeout=5)

    def _run(self) -> None:
        sides: dict[tuple[str, str], Side] | None = None
        while not self._stop.wait(self._health.check_seconds):
            if not self._watching():
                sides = None  # another worker may report meanwhile: read the topic again
                continue
            try:
                if sides is None:
                    sides = read_sides(self._bootstrap, self._topic)
                self.check(sides)
            except Exception as exc:  # Kafka or ClickHouse away: the next check tries again
                log.warning("health check failed, retrying in %.0fs: %r",
                            self._health.check_seconds, exc)  # fmt: skip
                sides = None

    def check(self, sides: dict[tuple[str, str], Side]) -> int:
        """Report every account whose side changed; returns how many were reported."""
        at = self._clock()
        reported = 0
        for tenant in tenants(self._ch, self._health, at):
            for found in scores(self._ch, self._config, self._health, tenant, at):
                last = sides.get((tenant, found.account), ABOVE)
                if (found.score < self._health.threshold) == last[1]:
                    continue
                record = crossing(tenant, found, last, self._health, at)
                self._send(f"{tenant}:{found.account}", record)
                sides[(tenant, found.account)] = (record["crossing"], record["below"])
                reported += 1
        return reported

    def _send(self, key: str, record: dict[str, Any]) -> None:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self._bootstrap.split(","), acks="all", enable_idempotence=True
            )
        future = self._producer.send(
            self._topic, key=key.encode(), value=json.dumps(record).encode()
        )
        future.get(timeout=30)  # held by Kafka before it is remembered
