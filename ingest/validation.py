"""Admitting events one at a time: each becomes an EnrichedEvent or a Rejection with its reason."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from ingest.limits import Limits
from ingest.strict_json import NotJson, first_problem
from schemas import EnrichedEvent
from schemas.enriched import CLAMPED, FLAG_KEY
from schemas.events import EARLIEST, LATEST, Message

_MESSAGE: TypeAdapter[Any] = TypeAdapter(Message)
CALLS = ("track", "identify", "group")
UNSUPPORTED_CALLS = ("page", "screen", "alias")
# Deeper than any real properties object, shallow enough that no JSON encoder on the way
# (ours, pydantic's, ClickHouse's) hits its recursion limit.
MAX_DEPTH = 32
# Where a clamped event keeps its flag: in its context, stored with it, queryable downstream.


@dataclass(frozen=True)
class Rejection:
    """An event that was not accepted; produced to `events.invalid` and reported to the sender."""

    index: int
    message_id: str | None
    reason: str
    tenant: str
    received_at: datetime
    sent_at: datetime | None
    raw: bytes  # the event as sent, as compact JSON; cut to the event limit when it was larger
    truncated: bool = False
    errors: tuple[dict[str, str], ...] = ()

    def public(self) -> dict[str, Any]:
        """What the sender is told about it."""
        return {
            "index": self.index,
            "messageId": self.message_id,
            "reason": self.reason,
            "errors": list(self.errors),
        }

    def kafka_key(self) -> bytes:
        return self.tenant.encode()

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        """Everything an operator needs to inspect, fix and re-send it with the tenant's key."""
        headers = {
            "reason": self.reason,
            "errors": json.dumps(list(self.errors)),
            "source": "collector",
            "tenant": self.tenant,
            "index": str(self.index),
            "received-at": self.received_at.isoformat(),
        }
        if self.sent_at is not None:
            headers["sent-at"] = self.sent_at.isoformat()
        if self.truncated:
            headers["truncated"] = "true"
        return [(k, v.encode("utf-8", "backslashreplace")) for k, v in headers.items()]


@dataclass(frozen=True)
class Notice:
    """An accepted event that was changed on the way in."""

    index: int
    message_id: str
    warning: str

    def public(self) -> dict[str, Any]:
        return {"index": self.index, "messageId": self.message_id, "warning": self.warning}


@dataclass
class Admission:
    accepted: list[EnrichedEvent] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[Notice] = field(default_factory=list)


def admit(
    items: Sequence[Any],
    *,
    tenant: str,
    received_at: datetime,
    limits: Limits,
    sent_at: datetime | None = None,
    context: dict[str, Any] | None = None,
    call: str | None = None,
) -> Admission:
    """Judge each item on its own: one bad event never costs the good ones their place.

    `call` is the type a single-call endpoint (/v1/track, ...) implies; None for a batch. Nothing
    here raises on input, whatever its shape: every failure becomes a Rejection.
    """
    admission = Admission()
    context = context or {}
    context_encodes = _quick_compact(context) is not None
    for index, item in enumerate(items):
        judged = _judge(
            index, item, tenant, received_at, limits, sent_at, context, context_encodes, call
        )
        if isinstance(judged, Rejection):
            admission.rejected.append(judged)
            continue
        event, warning = judged
        admission.accepted.append(event)
        if warning is not None:
            admission.warnings.append(warning)
    return admission


def _judge(
    index: int,
    item: Any,
    tenant: str,
    received_at: datetime,
    limits: Limits,
    batch_sent_at: datetime | None,
    batch_context: dict[str, Any],
    context_encodes: bool,
    call: str | None,
) -> Rejection | tuple[EnrichedEvent, Notice | None]:
    message_id = item.get("messageId") if isinstance(item, dict) else None

    def reject(reason: str, errors: list[dict[str, str]] | None = None) -> Rejection:
        raw = _compact(item)
        cut = len(raw) > limits.max_event_bytes
        return Rejection(
            index=index,
            message_id=message_id if isinstance(message_id, str) else None,
            reason=reason,
            tenant=tenant,
            received_at=received_at,
            sent_at=batch_sent_at,
            raw=raw[: limits.max_event_bytes] if cut else raw,
            truncated=cut,
            errors=tuple(errors or ()),
        )

    if not isinstance(item, dict):
        return reject("an event must be a JSON object")
    if (problem := first_problem(item, MAX_DEPTH)) is not None:
        return reject(problem)
    if (problem := _type_problem(item, call)) is not None:
        return reject(problem)
    quick = _quick_compact(item)
    surely_small = quick is not None and len(quick) * MAX_ESCAPE_GROWTH <= limits.max_event_bytes
    if not surely_small and (size := len(_compact(item))) > limits.max_event_bytes:
        return reject(f"the event is {size} bytes; the limit is {limits.max_event_bytes}")
    try:
        message = _MESSAGE.validate_python({**item, "type": call} if call else item)
    except ValidationError as exc:
        prefix: tuple[str | int, ...] = () if call else ("batch", index)
        return reject("the event does not follow the event contract", field_errors(exc, prefix))
    sent_at = message.sent_at or batch_sent_at
    for name, value in (("timestamp", message.timestamp), ("sentAt", sent_at)):
        if value is not None and not EARLIEST <= value < LATEST:
            return reject(f"{name} {value.isoformat()} is outside {EARLIEST.year}-{LATEST.year}")
    try:
        event = EnrichedEvent.from_message(
            message,
            tenant=tenant,
            received_at=received_at,
            batch_sent_at=batch_sent_at,
            batch_context=batch_context,
        )
    except (ValueError, OverflowError) as exc:
        return reject(f"the event cannot be enriched: {exc}")
    if event.timestamp < EARLIEST:
        return reject(f"the clock-corrected timestamp {event.timestamp.isoformat()} is before 1970")
    event, warning = _clamp(index, event, received_at, limits)
    if quick is None or not context_encodes:
        try:
            # Whatever pydantic accepted must also encode for Kafka (lone surrogates do not);
            # orjson having written the event and the batch context proves it already.
            event.partition_key.encode()
            event.to_kafka()
        except ValueError as exc:
            return reject(f"the event cannot be encoded as UTF-8 JSON: {exc}")
    return event, warning


def _type_problem(item: dict[str, Any], call: str | None) -> str | None:
    kind = item.get("type", call)
    if call is not None and kind != call:
        return f"type {_short(kind)} sent to /v1/{call}"
    if kind in UNSUPPORTED_CALLS:
        return f"{kind} calls are not supported: send track, identify or group"
    if kind is None:
        return "type is required: track, identify or group"
    if kind not in CALLS:
        return f"unknown type {_short(kind)}: send track, identify or group"
    return None


def _clamp(
    index: int, event: EnrichedEvent, received_at: datetime, limits: Limits
) -> tuple[EnrichedEvent, Notice | None]:
    """An event time far ahead of its arrival is a broken clock: store it at receivedAt, with
    the time it claimed kept in `context.usageStream.clampedTimestamp` and the sender told."""
    if event.timestamp <= received_at + limits.max_future:
        return event, None
    claimed = event.timestamp.isoformat()
    flag = {**_as_dict(event.context.get(FLAG_KEY)), CLAMPED: claimed}
    clamped = event.model_copy(
        update={"timestamp": received_at, "context": {**event.context, FLAG_KEY: flag}}
    )
    warning = Notice(
        index,
        event.message_id,
        f"timestamp {claimed} is more than {limits.max_future} after receivedAt;"
        " stored at receivedAt",
    )
    return clamped, warning


def field_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, str]]:
    """pydantic's errors as {field, message}, the field a dotted path a sender can find."""
    return [
        {
            "field": ".".join(str(p) for p in (*prefix, *err["loc"])) or "(body)",
            "message": err["msg"],
        }
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]


# How much longer `_compact` can be than orjson's UTF-8 of the same value: a character of 2-4
# UTF-8 bytes is escaped as 6 or 12 (\\uXXXX, a surrogate pair), a float such as 1e16 gains a
# sign (1e+16); nothing grows more than threefold.
MAX_ESCAPE_GROWTH = 3


def _quick_compact(item: Any) -> bytes | None:
    """The event in orjson's UTF-8 JSON, ~7 times faster than `_compact`; None where orjson
    cannot write it (lone surrogates, integers past 64 bits)."""
    try:
        return orjson.dumps(item, default=_as_written)
    except orjson.JSONEncodeError:
        return None


def _compact(item: Any) -> bytes:
    """The event as compact JSON with non-ASCII escaped (Segment's libraries measure the same
    way); escaping also carries lone surrogates through intact."""
    try:
        return json.dumps(item, separators=(",", ":"), default=_as_written).encode()
    except (ValueError, RecursionError):
        return b""


def _as_written(value: Any) -> str:
    """A value JSON cannot carry, kept in the rejected event as the text the sender wrote."""
    if isinstance(value, NotJson):
        return value.text
    raise TypeError(f"{type(value).__name__} is not JSON")


def _as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
