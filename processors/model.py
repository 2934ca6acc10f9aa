"""What the worker handles, as plain values: Kafka records, decoded deliveries, rejected messages.

Pure: no client library is imported here, so the engine, the folds and their tests depend on
nothing that does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Protocol

import msgspec
from pydantic import ValidationError

from schemas.enriched import CONTRACT_VERSION, EnrichedEvent

AwareTime = Annotated[datetime, msgspec.Meta(tz=True)]


class Event(msgspec.Struct, frozen=True, rename="camel"):
    """An event as the worker reads it from Kafka: the fields of `EnrichedEvent`, in a type that
    msgspec decodes straight from the value's JSON (~2 µs an event; building the pydantic model
    costs ~9). The collector validated and normalised every event it wrote, so a value of the
    contract version this type names is taken as it is; `decode` sends anything else through
    `EnrichedEvent`'s full validation."""

    contract: Literal[1]  # CONTRACT_VERSION: a value of any other version fails this decoder
    tenant: str
    type: Literal["track", "identify", "group"]
    message_id: str
    timestamp: AwareTime
    received_at: AwareTime
    event: str = ""
    account: str = ""
    user_id: str = ""
    anonymous_id: str = ""
    properties: dict[str, Any] = {}
    traits: dict[str, Any] = {}
    context: dict[str, Any] = {}
    original_timestamp: AwareTime | None = None
    sent_at: AwareTime | None = None

    @classmethod
    def of(cls, event: EnrichedEvent) -> Event:
        """The same event, from the model that validated it."""
        return cls(
            contract=CONTRACT_VERSION, tenant=event.tenant, type=event.type,
            message_id=event.message_id, timestamp=event.timestamp,
            received_at=event.received_at, event=event.event, account=event.account,
            user_id=event.user_id, anonymous_id=event.anonymous_id, properties=event.properties,
            traits=event.traits, context=event.context,
            original_timestamp=event.original_timestamp, sent_at=event.sent_at,
        )  # fmt: skip


_TRUSTED = msgspec.json.Decoder(Event)


# The two values made for every event the worker reads: msgspec Structs are built in C, ~0.15 µs
# against ~1 µs for a frozen dataclass. Neither can be part of a reference cycle (gc=False).
class RawMessage(msgspec.Struct, frozen=True, gc=False):
    """What the worker needs of a Kafka record."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes


class Delivery(msgspec.Struct, frozen=True, gc=False):
    """An event as read from Kafka, with the place it was read from."""

    event: Event
    partition: int
    offset: int

    @property
    def key(self) -> tuple[str, str]:
        return (self.event.tenant, self.event.message_id)

    @property
    def place(self) -> tuple[int, int]:
        return (self.partition, self.offset)


@dataclass(frozen=True)
class Rejected:
    """A message no processor can use, with the reason; it goes to the dead-letter topic."""

    message: RawMessage
    reason: str


class Placed(Protocol):
    """Anything read from a Kafka place: a delivery, a raw message."""

    @property
    def partition(self) -> int: ...

    @property
    def offset(self) -> int: ...


def offset_marks(batch: Sequence[Placed]) -> dict[int, int]:
    """The mark a write of `batch` leaves: per partition, one past its last offset."""
    out: dict[int, int] = {}
    for d in batch:
        out[d.partition] = max(out.get(d.partition, 0), d.offset + 1)
    return out


def _in_utc(event: Event) -> bool:
    return event.timestamp.tzinfo is UTC and event.received_at.tzinfo is UTC


def decode(messages: Sequence[RawMessage]) -> tuple[list[Delivery], list[Rejected]]:
    """Bad messages are data: each becomes a Rejected with a reason, never an exception.

    A value of the current contract version, in UTC as the collector writes it, is decoded by
    msgspec; anything else (an older version, another producer, a broken value) takes
    `EnrichedEvent`'s full validation, which says why a bad one is bad."""
    deliveries, rejected = [], []
    for message in messages:
        try:
            event = _TRUSTED.decode(message.value)
            if not _in_utc(event):
                raise msgspec.ValidationError("a time not in UTC")
        except msgspec.DecodeError:
            try:
                event = Event.of(EnrichedEvent.from_kafka(message.value))
            except (ValidationError, ValueError) as exc:
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                rejected.append(Rejected(message, f"not an event of the contract: {reason}"))
                continue
        deliveries.append(Delivery(event, message.partition, message.offset))
    return deliveries, rejected
