"""What the worker handles, as plain values: Kafka records, decoded deliveries, rejected messages.

Pure: no client library is imported here, so the engine, the folds and their tests depend on
nothing that does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from schemas import EnrichedEvent


@dataclass(frozen=True)
class RawMessage:
    """What the worker needs of a Kafka record."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes


@dataclass(frozen=True)
class Delivery:
    """An event as read from Kafka, with the place it was read from."""

    event: EnrichedEvent
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


def decode(messages: Sequence[RawMessage]) -> tuple[list[Delivery], list[Rejected]]:
    """Bad messages are data: each becomes a Rejected with a reason, never an exception."""
    deliveries, rejected = [], []
    for message in messages:
        try:
            event = EnrichedEvent.from_kafka(message.value)
        except (ValidationError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            rejected.append(Rejected(message, f"not an event of the contract: {reason}"))
            continue
        deliveries.append(Delivery(event, message.partition, message.offset))
    return deliveries, rejected
