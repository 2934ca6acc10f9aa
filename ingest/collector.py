"""The HTTP collector: Segment-style endpoints that answer 200 only once Kafka holds it all."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry

from ingest import openapi
from ingest.errors import CollectorError
from ingest.intake import Intake
from ingest.limits import Limits
from ingest.metrics import CollectorMetrics
from ingest.ratelimit import RateLimiter
from ingest.sink import EventSink
from runtime.api_docs import serve_docs

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
    accept = Intake(sink, tenants_by_write_key, limits, metrics, rate_limiter).accept

    @app.exception_handler(CollectorError)
    async def _problem(request: Request, exc: CollectorError) -> Response:
        metrics.rejected(request, exc.kind.name.lower())
        return exc.response()

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
