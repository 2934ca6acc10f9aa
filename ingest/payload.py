"""Turning a request body into validated messages: size limits, gzip, JSON, the event contract."""

from __future__ import annotations

import json
import zlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ingest.errors import CollectorError, ErrorKind
from schemas.events import Batch, Message

_MESSAGE = TypeAdapter(Message)


async def read_body(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """Read at most `limit` bytes; past that answer 413 without reading the rest."""
    body = bytearray()
    async for chunk in chunks:
        body.extend(chunk)
        if len(body) > limit:
            raise CollectorError(ErrorKind.TOO_LARGE, f"the body is larger than {limit} bytes")
    return bytes(body)


def decode(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """Undo gzip, stopping at `limit` decompressed bytes so a small bomb cannot fill memory."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise CollectorError(
            ErrorKind.UNSUPPORTED_ENCODING, f"Content-Encoding {encoding!r}: send gzip or nothing"
        )
    inflater = zlib.decompressobj(wbits=31)
    try:
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise CollectorError(ErrorKind.BAD_PAYLOAD, f"the gzip body is corrupt: {exc}") from exc
    if len(data) > limit:
        raise CollectorError(
            ErrorKind.TOO_LARGE, f"the body is larger than {limit} bytes once decompressed"
        )
    if not inflater.eof:
        raise CollectorError(ErrorKind.BAD_PAYLOAD, "the gzip body is truncated")
    return data


def parse_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise CollectorError(ErrorKind.BAD_PAYLOAD, f"the body is not JSON: {exc}") from exc


def _readable(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """pydantic's errors as {field, message}, the field a dotted path a sender can find."""
    return [
        {
            "field": ".".join(str(p) for p in (*prefix, *err["loc"])) or "(body)",
            "message": err["msg"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]


def parse_batch(document: Any) -> Batch:
    try:
        return Batch.model_validate(document)
    except ValidationError as exc:
        raise CollectorError(
            ErrorKind.BAD_PAYLOAD, "the batch does not follow the event contract", _readable(exc)
        ) from exc


def parse_single(document: Any, call: str) -> Batch:
    """A /v1/track, /v1/identify or /v1/group body: one message, its type given by the path."""
    if not isinstance(document, dict):
        raise CollectorError(ErrorKind.BAD_PAYLOAD, "the body must be a JSON object")
    if document.get("type", call) != call:
        raise CollectorError(
            ErrorKind.BAD_PAYLOAD, f"type {document.get('type')!r} sent to /v1/{call}"
        )
    try:
        message = _MESSAGE.validate_python({**document, "type": call})
    except ValidationError as exc:
        raise CollectorError(
            ErrorKind.BAD_PAYLOAD,
            f"the {call} call does not follow the event contract",
            _readable(exc),
        ) from exc
    return Batch(batch=[message], sentAt=message.sent_at)


def write_key_from_body(document: Any) -> str | None:
    """Segment also accepts the write key as `writeKey` in the body."""
    if isinstance(document, dict) and isinstance(document.get("writeKey"), str):
        return str(document["writeKey"])
    return None
