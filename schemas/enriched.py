"""The event as it travels on Kafka: the wire message plus what the server knows (tenant, times)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.events import Group, Identify, Track, UtcDatetime

# The version of this value's shape on Kafka, written into every value. A worker decodes a value
# of the version it knows with a fast decoder of its own and sends anything else through this
# model's full validation (processors.model.decode).
CONTRACT_VERSION: Final = 1
# The context key under which the collector notes what it changed: `clampedTimestamp`, the time
# an event claimed when that was too far in the future and it was stored at receipt instead.
FLAG_KEY: Final = "usageStream"
CLAMPED: Final = "clampedTimestamp"


def corrected_timestamp(
    timestamp: datetime | None, sent_at: datetime | None, received_at: datetime
) -> datetime:
    """Event time corrected for the sender's clock skew: timestamp - (sentAt - receivedAt).

    The client stamps `timestamp` and `sentAt` with the same (possibly wrong) clock, so their
    difference is trustworthy; `receivedAt` is ours. Without `sentAt` nothing can be corrected;
    without `timestamp` the event happened when it was received.
    """
    if timestamp is None:
        return received_at
    if sent_at is None:
        return timestamp
    return timestamp - (sent_at - received_at)


def _traits(message: Track | Identify | Group, context: dict[str, Any]) -> dict[str, Any]:
    """An identify's or group's traits; RudderStack's and Segment's mobile libraries send an
    identify's traits in `context.traits` instead, which then count as its traits."""
    if isinstance(message, Track):
        return {}
    if not message.traits and isinstance(message, Identify):
        found = context.get("traits")
        if isinstance(found, dict):
            return found
    return message.traits


class EnrichedEvent(BaseModel):
    """One accepted event, keyed on Kafka by `partition_key` so an account's events stay ordered."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    contract: int = CONTRACT_VERSION
    tenant: str
    type: Literal["track", "identify", "group"]
    message_id: str = Field(alias="messageId")
    event: str = ""
    account: str = ""
    user_id: str = Field(default="", alias="userId")
    anonymous_id: str = Field(default="", alias="anonymousId")
    properties: dict[str, Any] = Field(default_factory=dict)
    traits: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)
    timestamp: UtcDatetime
    original_timestamp: UtcDatetime | None = Field(default=None, alias="originalTimestamp")
    sent_at: UtcDatetime | None = Field(default=None, alias="sentAt")
    received_at: UtcDatetime = Field(alias="receivedAt")

    @classmethod
    def from_message(
        cls,
        message: Track | Identify | Group,
        *,
        tenant: str,
        received_at: datetime,
        batch_sent_at: datetime | None = None,
        batch_context: dict[str, Any] | None = None,
    ) -> EnrichedEvent:
        sent_at = message.sent_at or batch_sent_at
        context = {**(batch_context or {}), **message.context}
        return cls(
            tenant=tenant,
            type=message.type,
            message_id=message.message_id,
            event=message.event if isinstance(message, Track) else "",
            account=message.account or "",
            user_id=message.user_id or "",
            anonymous_id=message.anonymous_id or "",
            properties=message.properties if isinstance(message, Track) else {},
            traits=_traits(message, context),
            context=context,
            timestamp=corrected_timestamp(message.timestamp, sent_at, received_at),
            original_timestamp=message.timestamp,
            sent_at=sent_at,
            received_at=received_at,
        )

    @property
    def partition_key(self) -> str:
        """tenant:account, so one account's events share a partition; users without one by user."""
        subject = self.account or f"user:{self.user_id or self.anonymous_id}"
        return f"{self.tenant}:{subject}"

    def to_kafka(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    @classmethod
    def from_kafka(cls, value: bytes) -> EnrichedEvent:
        return cls.model_validate_json(value)
