"""The worker's HTTP side: health, readiness and the tenant-scoped read API over ClickHouse.

With the embedded chDB engine only the process that owns the data directory can read it, so the
worker, which writes, also answers reads.
"""

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from processors.auth import read_key_tenant
from processors.clickhouse import ClickHouse
from processors.event_store import COLUMNS
from schemas.events import UtcDatetime

_JSON_COLUMNS = {"properties", "traits", "context"}


class StoredEvent(BaseModel):
    tenant: str
    type: str
    message_id: str
    event: str
    account: str
    user_id: str
    anonymous_id: str
    timestamp: UtcDatetime
    original_timestamp: UtcDatetime | None
    sent_at: UtcDatetime | None
    received_at: UtcDatetime
    stored_at: UtcDatetime
    properties: dict[str, Any]
    traits: dict[str, Any]
    context: dict[str, Any]


class EventCount(BaseModel):
    event: str
    type: str
    events: int
    accounts: int
    users: int


def create_read_api(
    clickhouse: ClickHouse,
    tenants_by_read_key: Mapping[str, str],
    ready: Callable[[], bool],
    routers: Sequence[APIRouter] = (),
) -> FastAPI:
    app = FastAPI(title="usage-stream read API", version="1")

    async def query(sql: str, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(clickhouse.query, sql, parameters)

    Tenant = Annotated[str, Depends(read_key_tenant(tenants_by_read_key))]
    for router in routers:
        app.include_router(router)

    @app.get("/v1/events", response_model=list[StoredEvent], summary="Stored raw events")
    async def events(
        tenant: Tenant,
        message_id: Annotated[list[str] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[dict[str, Any]]:
        where = "tenant = {tenant:String}"
        if message_id:
            where += " AND message_id IN {ids:Array(String)}"
        rows = await query(
            f"SELECT {', '.join(COLUMNS)}, stored_at FROM events WHERE {where}"
            " ORDER BY timestamp DESC, message_id LIMIT {limit:UInt32}",
            {"tenant": tenant, "ids": message_id or [], "limit": limit},
        )
        names = [*COLUMNS, "stored_at"]
        return [
            {n: json.loads(v) if n in _JSON_COLUMNS else v for n, v in zip(names, row, strict=True)}
            for row in rows
        ]

    @app.get("/v1/events/counts", response_model=list[EventCount], summary="Events per name")
    async def counts(
        tenant: Tenant,
        received_since: Annotated[
            UtcDatetime | None, Query(description="only events received at or after this time")
        ] = None,
    ) -> list[dict[str, Any]]:
        since = received_since or datetime(1970, 1, 1, tzinfo=UTC)
        rows = await query(
            "SELECT event, type, count(), uniqExact(account), uniqExact(user_id)"
            " FROM events WHERE tenant = {tenant:String}"
            " AND received_at >= {since:DateTime64(3, 'UTC')}"
            " GROUP BY event, type ORDER BY count() DESC, event",
            {"tenant": tenant, "since": since},
        )
        keys = ("event", "type", "events", "accounts", "users")
        return [dict(zip(keys, row, strict=True)) for row in rows]

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", summary="ClickHouse answers and the consumer is running")
    async def readyz() -> JSONResponse:
        try:
            await query("SELECT 1", {})
            clickhouse = True
        except Exception:  # any failure to answer means not ready
            clickhouse = False
        consuming = ready()
        ok = clickhouse and consuming
        body = {"ready": ok, "clickhouse": clickhouse, "kafka": consuming}
        return JSONResponse(body, status_code=200 if ok else 503)

    return app
