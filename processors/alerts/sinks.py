"""Where alert records go: the compacted `usage_alerts` topic first, the ClickHouse table after,
and an in-memory pair for unit tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from kafka import KafkaProducer

from processors.alerts.recovery import ALERT_COLUMNS, ALERTS_TABLE, PLAN_COLUMNS, PLANS_TABLE
from processors.storage.clickhouse import ClickHouse

SEND_TIMEOUT_SECONDS = 30.0


class KafkaAlertSink:
    """Each record keyed tenant:account (an account's records in order, compacted to its last),
    acks=all with idempotence; `send` returns once Kafka holds every one, else raises."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._bootstrap, self._topic = bootstrap, topic
        self._producer: KafkaProducer | None = None

    def send(self, records: Sequence[dict[str, Any]]) -> None:
        if self._producer is None:
            self._producer = KafkaProducer(
                bootstrap_servers=self._bootstrap.split(","), acks="all", enable_idempotence=True
            )
        futures = [
            self._producer.send(
                self._topic,
                key=f"{r['tenant']}:{r['account']}".encode(),
                value=json.dumps(r).encode(),
            )
            for r in records
        ]
        try:
            for future in futures:
                future.get(timeout=SEND_TIMEOUT_SECONDS)
        except Exception:
            self.close()  # a producer that did not deliver is replaced
            raise

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=5)
            self._producer = None


class ClickHouseAlertStore:
    def __init__(self, clickhouse: ClickHouse) -> None:
        self._ch = clickhouse

    def insert_alerts(self, records: Sequence[dict[str, Any]]) -> None:
        rows = [[r[c] for c in ALERT_COLUMNS] for r in records]
        for row in rows:
            row[ALERT_COLUMNS.index("at")] = datetime.fromisoformat(row[-1])
        self._ch.insert_json(ALERTS_TABLE, rows, ALERT_COLUMNS)

    def insert_plans(self, rows: Sequence[tuple[str, str, datetime, str, str]]) -> None:
        self._ch.insert_json(PLANS_TABLE, [list(r) for r in rows], PLAN_COLUMNS)


class InMemoryAlerts:
    """Both ends in memory: what was sent, what was stored; `fail` makes the next send raise."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.stored: list[dict[str, Any]] = []
        self.plans: list[tuple[str, str, datetime, str, str]] = []
        self.fail = False

    def send(self, records: Sequence[dict[str, Any]]) -> None:
        if self.fail:
            self.fail = False
            raise ConnectionError("Kafka is away")
        self.sent += records

    def insert_alerts(self, records: Sequence[dict[str, Any]]) -> None:
        self.stored += records

    def insert_plans(self, rows: Sequence[tuple[str, str, datetime, str, str]]) -> None:
        self.plans += rows
