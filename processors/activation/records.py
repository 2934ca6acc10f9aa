"""What activation detection emits: outcomes (activated or missed) and window starts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from processors.activation.rules import iso, moment

ACTIVATION = "activation"
MISSED = "activation_missed"


@dataclass(frozen=True)
class Outcome:
    """One subject's verdict on one rule; there is exactly one per subject and rule, ever.

    Every field is a function of the events, never of when or how often they were processed,
    so a re-decided outcome (after a crash) is identical to the first, id included.
    """

    id: str
    type: str  # ACTIVATION or MISSED
    tenant: str
    rule: str
    subject: str  # "user" or "account"
    account: str
    user: str  # "" for account rules
    started_at: int  # ms since the epoch
    deadline: int
    activated_at: int | None
    message_id: str  # the qualifying event; "" when missed
    # where the deciding event was read: the qualifying event, or the one whose event time
    # closed the window (for missed); kept in ClickHouse, for tracing
    partition: int
    offset: int

    @property
    def key(self) -> bytes:
        return self.id.encode()

    @property
    def time_to_value_ms(self) -> int | None:
        return None if self.activated_at is None else self.activated_at - self.started_at

    def record(self) -> dict[str, Any]:
        """The record on the `activations` topic (JSON), keyed by `id`."""
        ttv = self.time_to_value_ms
        return {
            "id": self.id,
            "type": self.type,
            "tenant": self.tenant,
            "rule": self.rule,
            "subject": self.subject,
            "account": self.account,
            "user_id": self.user or None,
            "started_at": iso(self.started_at),
            "deadline": iso(self.deadline),
            "activated_at": None if self.activated_at is None else iso(self.activated_at),
            "time_to_value_seconds": None if ttv is None else ttv / 1000,
            "qualifying_message_id": self.message_id or None,
        }

    def encode(self) -> bytes:
        return json.dumps(self.record(), separators=(",", ":")).encode()


OUTCOME_COLUMNS = (
    "id", "type", "tenant", "rule", "subject", "account", "user_id", "started_at", "deadline",
    "activated_at", "time_to_value_ms", "qualifying_message_id", "kafka_partition", "kafka_offset",
)  # fmt: skip


def outcome_row(o: Outcome) -> list[Any]:
    activated: datetime | None = None if o.activated_at is None else moment(o.activated_at)
    return [
        o.id, o.type, o.tenant, o.rule, o.subject, o.account, o.user, moment(o.started_at),
        moment(o.deadline), activated, o.time_to_value_ms, o.message_id, o.partition, o.offset,
    ]  # fmt: skip


@dataclass(frozen=True)
class Start:
    """A subject's window opened (or, with an out-of-order earlier start, moved earlier)."""

    tenant: str
    rule: str
    account: str
    user: str
    started_at: int
    partition: int
    offset: int


START_COLUMNS = (
    "tenant", "rule", "account", "user_id", "started_at", "kafka_partition", "kafka_offset",
)  # fmt: skip


def start_row(s: Start) -> list[Any]:
    return [s.tenant, s.rule, s.account, s.user, moment(s.started_at), s.partition, s.offset]
