"""The account health routes: one account's score with its components, the accounts at risk."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from processors.account_health.query import scores
from processors.account_health.score import Score
from processors.api import params
from processors.api.errors import answers
from processors.storage.clickhouse import ClickHouse
from schemas.config import ProductConfig
from schemas.events import WireTime
from schemas.health import Health


class HealthOut(BaseModel):
    account: str
    score: float
    below_threshold: bool
    components: dict[str, float]
    last_event: str


class HealthListOut(BaseModel):
    at: str
    threshold: float
    accounts: list[HealthOut]


At = Annotated[WireTime | None, Query(description="score as of this moment (default: now)")]


def account_health_router(
    clickhouse: ClickHouse, config: ProductConfig, tenant_of: Callable[..., str]
) -> APIRouter:
    router = APIRouter(tags=["health"])
    Tenant = Annotated[str, Depends(tenant_of)]

    def configured() -> Health:
        if config.health is None:
            raise HTTPException(404, "no [health] section in the configuration")
        return config.health

    def out(found: Score, threshold: float) -> HealthOut:
        return HealthOut(
            account=found.account,
            score=found.score,
            below_threshold=found.score < threshold,
            components=found.components,
            last_event=found.last_event.isoformat(),
        )

    @router.get(
        "/v1/accounts/{account}/health",
        response_model=HealthOut,
        summary="One account's health score, 0-100, with each component",
        responses=answers(404),
    )
    async def account_health(tenant: Tenant, account: str, at: At = None) -> HealthOut:
        health = configured()
        params.in_range(at=at)
        moment = at or datetime.now(UTC)
        found = await asyncio.to_thread(scores, clickhouse, config, health, tenant, moment, account)
        if not found:
            days = health.forget_days
            raise HTTPException(
                404,
                f"account {account!r} used no feature in the last {days} days"
                " (health is read from feature use: see [features])",
            )
        return out(found[0], health.threshold)

    @router.get(
        "/v1/health",
        response_model=HealthListOut,
        summary="The tenant's accounts by health score, lowest first: the at-risk list",
        responses=answers(404),
    )
    async def health_list(
        tenant: Tenant,
        below: Annotated[
            float | None, Query(ge=0, le=100, description="only scores under this")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        at: At = None,
    ) -> HealthListOut:
        health = configured()
        params.in_range(at=at)
        moment = at or datetime.now(UTC)
        found = await asyncio.to_thread(scores, clickhouse, config, health, tenant, moment)
        shown = [s for s in found if below is None or s.score < below][:limit]
        return HealthListOut(
            at=moment.isoformat(),
            threshold=health.threshold,
            accounts=[out(s, health.threshold) for s in shown],
        )

    return router
