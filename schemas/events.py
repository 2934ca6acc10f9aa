"""The event contract on the wire: Segment's track, identify and group calls and their batch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator


def _as_utc(value: datetime) -> datetime:
    """Timestamps without an offset are taken as UTC, as Segment does; all are stored in UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:  # an offset that carries it past year 1 or 9999
        raise ValueError(f"{value.isoformat()} is out of range once in UTC") from None


def _written_as_a_date(value: Any) -> Any:
    """A sender's time must say what it means: a bare number could be seconds or milliseconds
    (253402300799 is the year 9999 in one and 1978 in the other), so it is refused, never read
    one way without a word."""
    if isinstance(value, int | float) or (isinstance(value, str) and _is_number(value)):
        raise ValueError("give the time as an ISO 8601 string (2026-11-30T12:00:00Z), not a number")
    return value


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
# The times this product stores and answers for; ClickHouse's DateTime64 columns hold them with
# room to spare, and outside them a time is a broken clock, not a plan.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# A time as senders (of events, of queries) write it: ISO 8601 text only.
WireTime = Annotated[datetime, BeforeValidator(_written_as_a_date), AfterValidator(_as_utc)]
Identifier = Annotated[str, Field(min_length=1, max_length=255)]


class _Message(BaseModel):
    """Fields common to every call. Names follow Segment's spec (camelCase on the wire)."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    message_id: Identifier = Field(alias="messageId")
    user_id: Identifier | None = Field(default=None, alias="userId")
    anonymous_id: Identifier | None = Field(default=None, alias="anonymousId")
    group_id: Identifier | None = Field(default=None, alias="groupId")
    context: dict[str, Any] = Field(default_factory=dict)
    integrations: dict[str, Any] = Field(default_factory=dict)
    timestamp: WireTime | None = None
    sent_at: WireTime | None = Field(default=None, alias="sentAt")

    @model_validator(mode="after")
    def _someone_did_it(self) -> _Message:
        if self.user_id is None and self.anonymous_id is None:
            raise ValueError("either userId or anonymousId is required")
        return self

    @property
    def account(self) -> str | None:
        """The customer account: `groupId`, or Segment's `context.groupId` on track calls."""
        if self.group_id is not None:
            return self.group_id
        value = self.context.get("groupId")
        return str(value) if isinstance(value, str | int) and str(value) else None


class Track(_Message):
    type: Literal["track"] = "track"
    event: Annotated[str, Field(min_length=1, max_length=255)]
    properties: dict[str, Any] = Field(default_factory=dict)


class Identify(_Message):
    type: Literal["identify"] = "identify"
    traits: dict[str, Any] = Field(default_factory=dict)


class Group(_Message):
    type: Literal["group"] = "group"
    group_id: Identifier = Field(alias="groupId")
    traits: dict[str, Any] = Field(default_factory=dict)


Message = Annotated[Track | Identify | Group, Field(discriminator="type")]


class Batch(BaseModel):
    """Segment's batch envelope: `sentAt` and `context` apply to each message lacking its own."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    batch: list[Message] = Field(min_length=1)
    sent_at: WireTime | None = Field(default=None, alias="sentAt")
    context: dict[str, Any] = Field(default_factory=dict)
