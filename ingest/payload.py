"""Turning a request body into an envelope of events: size limits, gzip, JSON, the batch shape."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ingest import strict_json
from ingest.errors import CollectorError, ErrorKind
from ingest.limits import Limits
from ingest.validation import MAX_DEPTH, field_errors
from schemas.events import WireTime

GZIP_MAGIC = b"\x1f\x8b"


async def read_body(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """Read at most `limit` bytes; past that answer 413 without reading the rest."""
    body = bytearray()
    async for chunk in chunks:
        body.extend(chunk)
        if len(body) > limit:
            raise CollectorError(ErrorKind.TOO_LARGE, f"the body is larger than {limit} bytes")
    return bytes(body)


def decode(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo gzip, stopping at `limit` decompressed bytes so a small bomb cannot fill memory.
    Every member of a multi-member body (what `cat a.gz b.gz` makes) is decoded, the limit on
    their total; anything after the last member is refused, never ignored."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise CollectorError(
            ErrorKind.UNSUPPORTED_ENCODING, f"Content-Encoding {encoding!r}: send gzip or nothing"
        )
    data, rest = bytearray(), body
    while True:
        inflater = zlib.decompressobj(wbits=31)
        try:
            data += inflater.decompress(rest, limit + 1 - len(data))
        except zlib.error as exc:
            raise CollectorError(ErrorKind.BAD_PAYLOAD, f"the gzip body is corrupt: {exc}") from exc
        if len(data) > limit:
            raise CollectorError(
                ErrorKind.TOO_LARGE, f"the body is larger than {limit} bytes once decompressed"
            )
        if not inflater.eof:
            raise CollectorError(ErrorKind.BAD_PAYLOAD, "the gzip body is truncated")
        rest = inflater.unused_data
        if not rest:
            return bytes(data)
        if not rest.startswith(GZIP_MAGIC):
            raise CollectorError(
                ErrorKind.BAD_PAYLOAD,
                f"{len(rest)} bytes after the gzip data are not another gzip member",
            )


def parse_json(data: bytes) -> Any:
    """The body as JSON; a value JSON cannot carry, or a duplicated key, is left for the event
    that holds it to be rejected for (see ingest.strict_json)."""
    try:
        return strict_json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise CollectorError(ErrorKind.BAD_PAYLOAD, f"the body is not JSON: {exc}") from exc


class _BatchFields(BaseModel):
    """The batch envelope's own fields; its events are judged one by one elsewhere."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    sent_at: WireTime | None = Field(default=None, alias="sentAt")
    context: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Envelope:
    """The events of one request, not yet judged, and what the batch says about all of them."""

    items: list[Any]
    sent_at: datetime | None = None
    context: dict[str, Any] | None = None


def envelope(document: Any, call: str | None, limits: Limits) -> Envelope:
    """A /v1/batch body, or the one event of a /v1/track, /v1/identify, ... body.

    Only a body whose shape is wrong as a whole is refused here (400, or 413 for too many
    events); anything wrong inside one event is that event's problem alone.
    """
    if not isinstance(document, dict):
        raise CollectorError(ErrorKind.BAD_PAYLOAD, "the body must be a JSON object")
    if call is not None:
        return Envelope([document])  # the body is the event: judged like any other
    if isinstance(document, strict_json.DuplicateKeys):
        keys = ", ".join(repr(k) for k in document.duplicates)
        raise CollectorError(ErrorKind.BAD_PAYLOAD, f"the body has duplicate keys: {keys}")
    if (problem := strict_json.first_problem(document.get("context"), MAX_DEPTH)) is not None:
        raise CollectorError(ErrorKind.BAD_PAYLOAD, f"the batch context: {problem}")
    batch = document.get("batch")
    if not isinstance(batch, list) or not batch:
        raise CollectorError(
            ErrorKind.BAD_PAYLOAD,
            "the body must carry its events in a non-empty `batch` list",
            [{"field": "batch", "message": "a non-empty list of events is required"}],
        )
    if len(batch) > limits.max_batch_events:
        raise CollectorError(
            ErrorKind.TOO_LARGE,
            f"the batch holds {len(batch)} events; the limit is {limits.max_batch_events}",
        )
    try:
        fields = _BatchFields.model_validate(document)
    except ValidationError as exc:
        raise CollectorError(
            ErrorKind.BAD_PAYLOAD, "the batch envelope is not valid", field_errors(exc)
        ) from exc
    return Envelope(batch, fields.sent_at, fields.context)


def write_key_from_body(document: Any) -> str | None:
    """Segment also accepts the write key as `writeKey` in the body."""
    if isinstance(document, dict) and isinstance(document.get("writeKey"), str):
        return str(document["writeKey"])
    return None
