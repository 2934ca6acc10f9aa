"""The raw-events routes: stored events by id, and counts per event name."""

import asyncio
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from processors.api import params
from processors.storage.clickhouse import ClickHouse
from processors.storage.events import COLUMNS
from processors.windows import EPOCH
from schemas.events import UtcDatetime, WireTime

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


def events_router(clickhouse: ClickHouse, tenant_of: Callable[..., str]) -> APIRouter:
    router = APIRouter()
    Tenant = Annotated[str, Depends(tenant_of)]

    async def query(sql: str, parameters: dict[str, Any]) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(clickhouse.query, sql, parameters)

    @router.get("/v1/events", response_model=list[StoredEvent], summary="Stored raw events")
    async def events(
        tenant: Tenant,
        message_id: Annotated[list[str] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[StoredEvent]:
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
            StoredEvent.model_validate(
                {
                    n: json.loads(v) if n in _JSON_COLUMNS else v
                    for n, v in zip(names, row, strict=True)
                }
            )
            for row in rows
        ]

    @router.get("/v1/events/counts", response_model=list[EventCount], summary="Events per name")
    async def counts(
        tenant: Tenant,
        received_since: Annotated[
            WireTime | None, Query(description="only events received at or after this time")
        ] = None,
    ) -> list[EventCount]:
        params.in_range(received_since=received_since)
        rows = await query(
            "SELECT event, type, count(), uniqExact(account), uniqExact(user_id)"
            " FROM events WHERE tenant = {tenant:String}"
            " AND received_at >= {since:DateTime64(3, 'UTC')}"
            " GROUP BY event, type ORDER BY count() DESC, event",
            {"tenant": tenant, "since": received_since or EPOCH},
        )
        return [
            EventCount(event=e, type=t, events=n, accounts=accounts, users=users)
            for e, t, n, accounts, users in rows
        ]

    return router
