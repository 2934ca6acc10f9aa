"""The delivery log in ClickHouse (`webhook_deliveries`): one row per attempt, the latest row
of a delivery its state. The sender's durable queue, the API's listing, the re-send's source."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from processors.storage.clickhouse import ClickHouse
from processors.webhooks.model import Attempt, Delivery, DeliveryStatus, Outcome
from processors.windows import as_utc

TABLE = "webhook_deliveries"
COLUMNS = (
    "tenant", "endpoint", "url", "record_id", "kind", "account", "attempt", "status",
    "status_code", "error", "latency_seconds", "created_at", "attempted_at", "next_attempt_at",
    "topic", "kafka_partition", "kafka_offset", "payload",
)  # fmt: skip
# A delivery's latest row: the highest attempt, then the one written last (a re-send and the
# sender may both write the next number)
_LATEST = "(attempt, written_at)"
_DELIVERY = (
    f"endpoint, tenant, record_id, argMax(kind, {_LATEST}), argMax(account, {_LATEST}),"
    f" any(payload), min(created_at), argMax(next_attempt_at, {_LATEST}), any(topic),"
    f" any(kafka_partition), any(kafka_offset), max(attempt), argMax(status, {_LATEST})"
)


@dataclass(frozen=True)
class Logged:
    """A delivery as the log has it, with its status."""

    delivery: Delivery
    status: DeliveryStatus


@dataclass(frozen=True)
class LoggedAttempt:
    number: int
    status: DeliveryStatus
    status_code: int
    error: str
    latency_seconds: float
    at: datetime
    next_attempt_at: datetime | None
    url: str


@dataclass(frozen=True)
class Listed:
    """One delivery for the API: its state and every attempt, oldest first."""

    delivery: Delivery
    status: DeliveryStatus
    url: str
    attempts: list[LoggedAttempt]


def _row(delivery: Delivery, attempt: Attempt) -> list[Any]:
    outcome = attempt.outcome
    return [
        delivery.tenant, delivery.endpoint, attempt.url, delivery.record_id, delivery.kind,
        delivery.account, attempt.number, attempt.status.value, outcome.status_code,
        outcome.error, outcome.latency, delivery.created_at, attempt.at,
        attempt.next_attempt_at, delivery.topic, delivery.partition, delivery.offset,
        delivery.payload,
    ]  # fmt: skip


def _delivery(row: Sequence[Any]) -> Logged:
    (endpoint, tenant, record_id, kind, account, payload, created_at, next_at, topic,
     partition, offset, attempts, status) = row  # fmt: skip
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    return Logged(
        Delivery(
            endpoint=endpoint, tenant=tenant, record_id=record_id, kind=kind, account=account,
            payload=body, created_at=as_utc(created_at),
            next_attempt_at=as_utc(next_at or created_at),
            topic=topic, partition=partition, offset=offset, attempts=attempts,
        ),
        DeliveryStatus(status),
    )  # fmt: skip


class DeliveryLog:
    def __init__(self, clickhouse: ClickHouse) -> None:
        self._clickhouse = clickhouse

    def write(self, rows: Iterable[tuple[Delivery, Attempt]]) -> None:
        """Append attempts (row 0s of new deliveries included) in one insert."""
        values = [_row(d, a) for d, a in rows]
        if values:
            self._clickhouse.insert(TABLE, values, COLUMNS)

    def known(self, tenants: Collection[str], record_ids: Collection[str]) -> set[tuple[str, str]]:
        """(endpoint, record_id) of the deliveries among these records the log holds already:
        records read again after a restart, or sent again by the worker."""
        if not record_ids:
            return set()
        rows = self._clickhouse.query(
            f"SELECT DISTINCT endpoint, record_id FROM {TABLE}"
            " WHERE tenant IN {tenants:Array(String)} AND record_id IN {ids:Array(String)}",
            {"tenants": sorted(set(tenants)), "ids": sorted(set(record_ids))},
        )
        return {(endpoint, record_id) for endpoint, record_id in rows}

    def pending(self, topic: str, partitions: Collection[int], since: datetime) -> list[Delivery]:
        """The deliveries of records read from these partitions that are still pending,
        recorded since `since`, the earliest due first."""
        if not partitions:
            return []
        rows = self._clickhouse.query(
            f"SELECT {_DELIVERY} FROM {TABLE}"
            " WHERE created_at >= {since:DateTime64(3, 'UTC')} AND topic = {topic:String}"
            " AND kafka_partition IN {partitions:Array(UInt32)}"
            " GROUP BY tenant, record_id, endpoint"
            " HAVING argMax(status, (attempt, written_at)) = 'pending'"
            " ORDER BY argMax(next_attempt_at, (attempt, written_at))",
            {"since": since, "topic": topic, "partitions": sorted(partitions)},
        )
        return [_delivery(row).delivery for row in rows]

    def of_record(self, record_id: str) -> list[Logged]:
        """Every delivery of one record (one per endpoint it went to), as it stands."""
        rows = self._clickhouse.query(
            f"SELECT {_DELIVERY} FROM {TABLE} WHERE record_id = {{id:String}}"
            " GROUP BY tenant, record_id, endpoint ORDER BY endpoint",
            {"id": record_id},
        )
        return [_delivery(row) for row in rows]

    def listing(self, tenant: str, status: DeliveryStatus | None, limit: int) -> list[Listed]:
        """A tenant's deliveries, the most recently tried first, in `status` if given, each
        with its attempts."""
        having = "" if status is None else f" HAVING argMax(status, {_LATEST}) = {{s:String}}"
        rows = self._clickhouse.query(
            f"SELECT {_DELIVERY}, argMax(url, {_LATEST}) FROM {TABLE}"
            " WHERE tenant = {tenant:String} GROUP BY tenant, record_id, endpoint"
            f"{having} ORDER BY max(attempted_at) DESC, record_id, endpoint"
            " LIMIT {limit:UInt32}",
            {"tenant": tenant, "s": status.value if status else "", "limit": limit},
        )
        if not rows:
            return []
        found = {(r[0], r[2]): (_delivery(r[:-1]), r[-1]) for r in rows}
        attempts: dict[tuple[str, str], list[LoggedAttempt]] = {key: [] for key in found}
        for endpoint, record_id, *fields in self._clickhouse.query(
            "SELECT endpoint, record_id, attempt, status, status_code, error, latency_seconds,"
            f" attempted_at, next_attempt_at, url FROM {TABLE}"
            " WHERE tenant = {tenant:String} AND record_id IN {ids:Array(String)}"
            " ORDER BY attempt, written_at",
            {"tenant": tenant, "ids": sorted({record_id for _, record_id in found})},
        ):
            if (endpoint, record_id) in attempts:
                number, status_text, code, error, latency, at, next_at, url = fields
                attempts[(endpoint, record_id)].append(
                    LoggedAttempt(
                        number=number,
                        status=DeliveryStatus(status_text),
                        status_code=code,
                        error=error,
                        latency_seconds=latency,
                        at=as_utc(at),
                        next_attempt_at=as_utc(next_at) if next_at else None,
                        url=url,
                    )
                )
        return [
            Listed(logged.delivery, logged.status, url, attempts[key])
            for key, (logged, url) in found.items()
        ]


def recorded(delivery: Delivery, url: str) -> Attempt:
    """Row 0 of a new delivery: recorded as pending, due at once, not tried yet."""
    return Attempt(
        0,
        DeliveryStatus.PENDING,
        delivery.created_at,
        Outcome(0, "", 0.0),
        delivery.next_attempt_at,
        url,
    )
