"""The HTTP collector: Segment-style endpoints that answer 200 only once Kafka holds it all."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry

from ingest import openapi, payload
from ingest.api_docs import serve_docs
from ingest.errors import AsciiJSONResponse, CollectorError, ErrorKind
from ingest.limits import Limits
from ingest.metrics import CollectorMetrics, events_in
from ingest.ratelimit import RateLimiter
from ingest.sink import EventSink, SinkUnavailable
from ingest.validation import admit

log = logging.getLogger(__name__)

DESCRIPTION = """Segment's HTTP tracking API. Each event is judged on its own: a well-formed
request is answered 200 even when some (or all) of its events are invalid, with the rejected
ones listed, each with its reason; they are also produced to the `events.invalid` topic. The
answer comes only after Kafka holds every accepted and every rejected event; otherwise 503 and
nothing counts as accepted."""


class _Collector(FastAPI):
    """FastAPI whose OpenAPI document also shows the bodies the handlers read and write by hand."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            self.openapi_schema = openapi.document(self)
        return self.openapi_schema


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
    sink: EventSink,
    tenants_by_write_key: Mapping[str, str],
    limits: Limits | int,
    metrics: CollectorMetrics | None = None,
    rate_limiter: RateLimiter | None = None,
) -> FastAPI:
    """`limits` may be a bare body limit in bytes, the other limits then at their defaults."""
    limits = limits if isinstance(limits, Limits) else Limits(max_body_bytes=limits)
    metrics = metrics or CollectorMetrics(CollectorRegistry(), tenants_by_write_key.values())

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        sink.close()

    app = _Collector(
        title="usage-stream collector",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    metrics.serve(app)
    serve_docs(app)

    @app.exception_handler(CollectorError)
    async def _problem(request: Request, exc: CollectorError) -> Response:
        metrics.rejected(request, exc.kind.name.lower())
        return exc.response()

    def throttle(write_key: str) -> None:
        if rate_limiter is not None and (wait := rate_limiter.retry_after(write_key)) is not None:
            raise CollectorError(
                ErrorKind.RATE_LIMITED, "this write key sends too many events", retry_after=wait
            )

    async def accept(request: Request, call: str | None) -> JSONResponse:
        received_at = datetime.now(UTC)
        max_body = limits.max_body_bytes
        header_key = write_key_from_header(request.headers.get("authorization"))
        if header_key is not None and header_key not in tenants_by_write_key:
            raise CollectorError(ErrorKind.BAD_KEY, "the write key is not known")
        if header_key is not None:
            throttle(header_key)  # before reading the body: a throttled sender costs little
        if (length := request.headers.get("content-length", "")).isdigit() and (
            int(length) > max_body
        ):
            raise CollectorError(ErrorKind.TOO_LARGE, f"the body is larger than {max_body}")
        body = await payload.read_body(request.stream(), max_body)
        data = payload.decode(body, request.headers.get("content-encoding"), max_body)
        document = payload.parse_json(data)
        key = header_key or payload.write_key_from_body(document) or ""
        tenant = tenants_by_write_key.get(key)
        try:
            if tenant is None:
                raise CollectorError(
                    ErrorKind.BAD_KEY, "send your write key as the Basic-auth user"
                )
            if header_key is None:
                throttle(key)
            envelope = payload.envelope(document, call, limits)
        except CollectorError:
            metrics.received(request, events_in(document, call), tenant)
            raise
        if rate_limiter is not None:
            rate_limiter.charge(key, len(envelope.items))
        admission = admit(
            envelope.items,
            tenant=tenant,
            received_at=received_at,
            limits=limits,
            sent_at=envelope.sent_at,
            context=envelope.context,
            call=call,
        )
        # Received in two parts, so that received = accepted + rejected holds event by event.
        if admission.rejected:
            metrics.received(request, len(admission.rejected), tenant)
            metrics.rejected(request, ErrorKind.BAD_PAYLOAD.code)
        metrics.received(request, len(admission.accepted), tenant)
        try:
            with metrics.producing():
                await sink.publish(admission.accepted, admission.rejected)
        except SinkUnavailable as exc:
            log.warning("refused %d events of %s: %s", len(envelope.items), tenant, exc)
            raise CollectorError(ErrorKind.SINK_UNAVAILABLE, str(exc), retry_after=1) from exc
        metrics.accepted(request)
        answer = openapi.Accepted(
            success=not admission.rejected,
            accepted=len(admission.accepted),
            rejected=[openapi.RejectedEvent(**r.public()) for r in admission.rejected],
            warnings=[openapi.EventNotice(**w.public()) for w in admission.warnings],
        )
        return AsciiJSONResponse(answer.model_dump(by_alias=True))

    @app.post("/v1/batch", summary="Send a batch of track, identify and group calls")
    async def batch(request: Request) -> JSONResponse:
        return await accept(request, None)

    @app.post("/v1/import", summary="Segment's older name for /v1/batch")
    async def import_(request: Request) -> JSONResponse:
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

    def unsupported(call: str) -> Callable[[Request], Awaitable[JSONResponse]]:
        # Segment calls this product does not store: the event is rejected with the reason (and
        # parked on events.invalid, to replay later) rather than a bare 404 that a Segment
        # library would raise on.
        async def handler(request: Request) -> JSONResponse:
            return await accept(request, call)

        return handler

    for call in ("page", "screen", "alias"):
        app.post(
            f"/v1/{call}",
            summary=f"Not supported: {call} calls are rejected with the reason",
            name=call,
        )(unsupported(call))

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", summary="Kafka can take events")
    async def readyz() -> JSONResponse:
        ready = await asyncio.to_thread(sink.ready)
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    return app
