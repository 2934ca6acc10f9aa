"""The SDK's messages as the collector reads them: Segment's fields, a messageId from the start."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

VERSION = "0.1.0"
LIBRARY = {"name": "usage-stream-python", "version": VERSION}
# The collector's limit on ids and event names, in characters; it refuses the empty string too,
# but takes whitespace as it comes (" " is a valid id there, so it is here).
MAX_NAME_LENGTH = 255


def new_message_id() -> str:
    return str(uuid.uuid4())


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a Z; a naive time is taken as UTC, as Segment does."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build(
    call: str,
    *,
    message_id: str,
    timestamp: datetime,
    user_id: Any = None,
    anonymous_id: Any = None,
    group_id: Any = None,
    event: str | None = None,
    properties: Mapping[str, Any] | None = None,
    traits: Mapping[str, Any] | None = None,
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One message. Mistakes a caller can fix in code raise ValueError here, at the call, among
    them an id or event name the collector's contract refuses: empty, or too long."""
    ids = {
        "userId": _id(call, "user_id", user_id),
        "anonymousId": _id(call, "anonymous_id", anonymous_id),
        "groupId": _id(call, "group_id", group_id),
    }
    if ids["userId"] is None and ids["anonymousId"] is None:
        raise ValueError(f"{call}: user_id or anonymous_id is required (None and '' are missing)")
    if call == "track" and not event:
        raise ValueError("track: the event name is required")
    if call == "group" and ids["groupId"] is None:
        raise ValueError("group: group_id is required (None and '' are missing)")
    for name, value in (("message_id", message_id), ("event", event)):
        _within_limit(call, name, value)
    message: dict[str, Any] = {"type": call, "messageId": message_id}
    message.update((key, value) for key, value in ids.items() if value is not None)
    if event is not None:
        message["event"] = event
    if call == "track":
        message["properties"] = dict(properties or {})
    else:
        message["traits"] = dict(traits or {})
    message["context"] = {**(context or {}), "library": LIBRARY}
    message["timestamp"] = iso(timestamp)
    return message


def _id(call: str, name: str, value: Any) -> str | None:
    """An id as sent: a string, as Segment's libraries send them (42 and "42" are one user
    downstream); None when missing, and the empty string is missing too."""
    if value is None:
        return None
    text = str(value)
    _within_limit(call, name, text)
    return text or None


def _within_limit(call: str, name: str, value: Any) -> None:
    if value is not None and (length := len(str(value))) > MAX_NAME_LENGTH:
        raise ValueError(f"{call}: {name} is {length} characters; the limit is {MAX_NAME_LENGTH}")


def encode(message: Mapping[str, Any]) -> bytes:
    """Compact JSON with non-ASCII escaped: the bytes sent, and the size the collector measures.
    A value JSON cannot carry raises TypeError at the call, not later on the sender thread."""
    return json.dumps(message, separators=(",", ":"), default=_plain, allow_nan=False).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact: a float would round a billed quantity
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
