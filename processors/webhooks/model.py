"""What the webhook sender works with, free of I/O: an alert record read from Kafka, an
endpoint, a delivery of one record to one endpoint, and one attempt at it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from schemas.webhooks import Webhook, endpoint_names

RECORD_TYPE = "usage_alert"


class DeliveryStatus(StrEnum):
    """A delivery's state: tried until delivered, or failed once its `retry_for` is over."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class InvalidRecord(ValueError):
    """A record on the alerts topic that is not a usage alert: skipped, logged and counted."""


@dataclass(frozen=True)
class Alert:
    """The fields the sender routes by; `body` is the record's value, sent byte for byte."""

    id: str
    tenant: str
    account: str
    kind: str
    body: bytes


def parse_alert(value: bytes | None) -> Alert:
    """The alert a record holds, or InvalidRecord saying why it is none."""
    if value is None:
        raise InvalidRecord("a tombstone (no value)")
    try:
        record = json.loads(value.decode("utf-8"))  # UTF-8, as JSON on the wire must be
    except ValueError:
        raise InvalidRecord("not JSON in UTF-8") from None
    if not isinstance(record, dict) or record.get("type") != RECORD_TYPE:
        raise InvalidRecord(f"not a JSON object with type {RECORD_TYPE!r}")
    fields = {name: record.get(name) for name in ("id", "tenant", "kind")}
    missing = [name for name, v in fields.items() if not isinstance(v, str) or not v]
    if missing:
        raise InvalidRecord(f"no {' or '.join(missing)}")
    account = record.get("account")
    return Alert(
        id=record["id"],
        tenant=record["tenant"],
        account=account if isinstance(account, str) else "",
        kind=record["kind"],
        body=bytes(value),
    )


@dataclass(frozen=True)
class Endpoint:
    """A configured webhook under its name (the label of its metrics and log rows)."""

    name: str
    config: Webhook

    def wants(self, alert: Alert) -> bool:
        return alert.tenant == self.config.tenant and alert.kind in self.config.types


def endpoints(webhooks: list[Webhook]) -> list[Endpoint]:
    return [Endpoint(n, w) for n, w in zip(endpoint_names(webhooks), webhooks, strict=True)]


@dataclass(frozen=True)
class Delivery:
    """One record to one endpoint, as far as it has got: `attempts` tries so far, the next one
    due at `next_attempt_at`. Where it was read from Kafka says which sender owns it."""

    endpoint: str
    tenant: str
    record_id: str
    kind: str
    account: str
    payload: bytes
    created_at: datetime
    next_attempt_at: datetime
    topic: str
    partition: int
    offset: int
    attempts: int = 0


@dataclass(frozen=True)
class Outcome:
    """What one POST came to: the HTTP status (0 for none), why it failed, how long it took,
    and the endpoint's Retry-After header, if it sent one."""

    status_code: int
    error: str
    latency: float
    retry_after: str | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


@dataclass(frozen=True)
class Attempt:
    """One row of the delivery log: try `number` (0: recorded, not tried yet), what it came to
    and what it left the delivery as."""

    number: int
    status: DeliveryStatus
    at: datetime
    outcome: Outcome
    next_attempt_at: datetime | None
    url: str
