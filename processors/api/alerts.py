"""The usage alerts route: thresholds crossed and resolved, tier changes, newest first."""

import asyncio
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from processors.alerts.query import list_alerts
from processors.api import params
from processors.storage.clickhouse import ClickHouse
from schemas.config import ProductConfig


class AlertKind(StrEnum):
    FIRED = "fired"
    RESOLVED = "resolved"
    TIER_CHANGED = "tier_changed"


class AlertOut(BaseModel):
    id: str
    kind: AlertKind
    tenant: str
    account: str
    meter: str
    period: str
    threshold: str
    generation: int
    level: str | None
    quantity: str
    included: str | None
    plan: str
    with_others: list[str]
    tier_left: str
    tier_entered: str
    late: bool
    at: str


def alerts_router(
    clickhouse: ClickHouse, config: ProductConfig, tenant_of: Callable[..., str]
) -> APIRouter:
    router = APIRouter(tags=["alerts"])
    Tenant = Annotated[str, Depends(tenant_of)]

    @router.get(
        "/v1/alerts",
        response_model=list[AlertOut],
        summary="Usage alerts of the tenant (plan thresholds, tier changes), newest first",
    )
    async def alerts(
        tenant: Tenant,
        account: str | None = None,
        meter: str | None = None,
        period: Annotated[str | None, Query(description="YYYY-MM, the billing period")] = None,
        state: Annotated[AlertKind | None, Query(description="the record's kind")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> list[dict[str, Any]]:
        if period is not None:
            params.billing_period(period, config.billing)  # YYYY-MM, or a 400 that says so
        found: list[dict[str, Any]] = await asyncio.to_thread(
            list_alerts, clickhouse, tenant, account, meter, period,
            None if state is None else state.value, limit, offset,
        )  # fmt: skip
        return found

    return router
