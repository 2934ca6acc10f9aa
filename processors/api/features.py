"""The feature routes: counters per window, a feature's adoption, one account's breadth."""

import asyncio
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from processors.api import params
from processors.features import query as feature_query
from processors.features.query import FeatureUsageOut, FeatureUseOut
from processors.storage.clickhouse import ClickHouse
from processors.windows import FeatureWindow
from schemas.events import WireTime


class AdoptionAnswer(BaseModel):
    feature: str
    start: str
    to: str
    active_accounts: int
    accounts_using: int
    share: float


class BreadthAnswer(BaseModel):
    account: str
    start: str
    to: str
    features_used: int
    features_known: int
    breadth: float
    features: list[FeatureUseOut]


Days = Annotated[int, Query(ge=1, le=366, description="the last N days, up to `to`")]
To = Annotated[WireTime | None, Query(description="end of the range (default: now)")]


def features_router(clickhouse: ClickHouse, tenant_of: Callable[..., str]) -> APIRouter:
    router = APIRouter(tags=["analytics"])
    Tenant = Annotated[str, Depends(tenant_of)]

    @router.get(
        "/v1/features/usage",
        response_model=list[FeatureUsageOut],
        summary="Events and distinct users per window, account and feature over [from, to)",
    )
    async def features_usage(
        tenant: Tenant,
        start: Annotated[WireTime, Query(alias="from", description="inclusive, to the minute")],
        to: Annotated[WireTime, Query(description="exclusive, to the minute")],
        window: FeatureWindow = FeatureWindow.TOTAL,
        tz: str = "UTC",
        account: Annotated[list[str] | None, Query()] = None,
        feature: Annotated[list[str] | None, Query()] = None,
    ) -> list[FeatureUsageOut]:
        params.in_range(**{"from": start, "to": to})
        if start >= to:
            raise HTTPException(400, "`from` must be before `to`")
        return await asyncio.to_thread(
            feature_query.usage, clickhouse, tenant, start, to, window, params.zone(tz).key,
            account, feature,
        )  # fmt: skip

    @router.get(
        "/v1/features/{feature}/adoption",
        response_model=AdoptionAnswer,
        summary="The share of active accounts that used the feature in the last N days",
    )
    async def adoption(
        tenant: Tenant, feature: str, days: Days = 30, to: To = None
    ) -> dict[str, Any]:
        start, end = params.last_days(days, to)
        found = await asyncio.to_thread(
            feature_query.adoption, clickhouse, tenant, feature, start, end
        )
        return {"feature": feature, "start": start.isoformat(), "to": end.isoformat(),
                "active_accounts": found.active_accounts, "accounts_using": found.accounts_using,
                "share": found.share}  # fmt: skip

    @router.get(
        "/v1/accounts/{account}/features",
        response_model=BreadthAnswer,
        summary="Which features one account used in the last N days, how much: its breadth",
    )
    async def account_features(
        tenant: Tenant, account: str, days: Days = 30, to: To = None, tz: str = "UTC"
    ) -> dict[str, Any]:
        start, end = params.last_days(days, to)
        used, known = await asyncio.to_thread(
            feature_query.account_features, clickhouse, tenant, account, start, end,
            params.zone(tz).key,
        )  # fmt: skip
        return {"account": account, "start": start.isoformat(), "to": end.isoformat(),
                "features_used": len(used), "features_known": known,
                "breadth": len(used) / known if known else 0.0,
                "features": used}  # fmt: skip

    return router
