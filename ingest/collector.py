"""The HTTP collector: Segment-style endpoints that answer 200 only once Kafka holds it all."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from ingest import payload
from ingest.errors import CollectorError, ErrorKind
from ingest.sink import EventSink, SinkUnavailable
from schemas import Batch, EnrichedEvent

log = logging.getLogger(__name__)


def write_key_from_header(authorization: str | None) -> str | None:
    """Segment's convention: HTTP Basic auth with the write key as user name, no password."""
    if not authorization or not authorization.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.split(":", 1)[0] or None


def create_collector(
    sink: EventSink, tenants_by_write_key: Mapping[str, str], max_body_bytes: int
) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        sink.close()

    app = FastAPI(title="usage-stream collector", version="1", lifespan=lifespan)

    @app.exception_handler(CollectorError)
    async def _problem(_: Request, exc: CollectorError) -> Response:
        return exc.response()

    async def accept(request: Request, call: str | None) -> JSONResponse:
        received_at = datetime.now(UTC)
        header_key = write_key_from_header(request.headers.get("authorization"))
        if header_key is not None and header_key not in tenants_by_write_key:
            raise CollectorError(ErrorKind.BAD_KEY, "the write key is not known")
        if (length := request.headers.get("content-length", "")).isdigit() and (
            int(length) > max_body_bytes
        ):
            raise CollectorError(ErrorKind.TOO_LARGE, f"the body is larger than {max_body_bytes}")
        body = await payload.read_body(request.stream(), max_body_bytes)
        data = payload.decode(body, request.headers.get("content-encoding"), max_body_bytes)
        document = payload.parse_json(data)
        key = header_key or payload.write_key_from_body(document) or ""
        tenant = tenants_by_write_key.get(key)
        if tenant is None:
            raise CollectorError(ErrorKind.BAD_KEY, "send your write key as the Basic-auth user")
        batch = (
            payload.parse_batch(document) if call is None else payload.parse_single(document, call)
        )
        events = enrich(batch, tenant, received_at)
        try:
            await sink.publish(events)
        except SinkUnavailable as exc:
            log.warning("refused %d events of %s: %s", len(events), tenant, exc)
            raise CollectorError(ErrorKind.SINK_UNAVAILABLE, str(exc), retry_after=1) from exc
        return JSONResponse({"success": True, "accepted": len(events)})

    @app.post("/v1/batch", summary="Send a batch of track, identify and group calls")
    async def batch(request: Request) -> JSONResponse:
        return await accept(request, None)

    @app.post("/v1/track", summary="Record an action a user performed")
    async def track(request: Request) -> JSONResponse:
        return await accept(request, "track")

    @app.post("/v1/identify", summary="Tie a user to their traits")
    async def identify(request: Request) -> JSONResponse:
        return await accept(request, "identify")

    @app.post("/v1/group", summary="Tie a user to an account (groupId) and its traits")
    async def group(request: Request) -> JSONResponse:
        return await accept(request, "group")

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Kafka can take events")
    async def readyz() -> JSONResponse:
        ready = await asyncio.to_thread(sink.ready)
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    return app


def enrich(batch: Batch, tenant: str, received_at: datetime) -> list[EnrichedEvent]:
    return [
        EnrichedEvent.from_message(
            message,
            tenant=tenant,
            received_at=received_at,
            batch_sent_at=batch.sent_at,
            batch_context=batch.context,
        )
        for message in batch.batch
    ]
