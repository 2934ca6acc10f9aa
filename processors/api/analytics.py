"""The analytics API: activations, signup cohorts, feature counters, adoption and breadth."""

import asyncio
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from processors.activation import query as activation_query
from processors.activation.query import ActivationOut, Cohort, CohortOut
from processors.api import params
from processors.api.errors import answers
from processors.features import query as feature_query
from processors.features.query import FeatureUsageOut, FeatureUseOut
from processors.storage.clickhouse import ClickHouse
from processors.windows import EPOCH, FeatureWindow
from schemas.config import ProductConfig
from schemas.events import LATEST, WireTime


class OutcomeType(StrEnum):
    ACTIVATION = "activation"
    MISSED = "activation_missed"


class CohortAnswer(BaseModel):
    rule: str
    cohort: str
    tz: str
    data: list[CohortOut]


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
STARTS_FROM = "windows opened at or after this"


def analytics_router(
    clickhouse: ClickHouse,
    config: ProductConfig,
    tenant_of: Callable[..., str],
) -> APIRouter:
    router = APIRouter(tags=["analytics"])
    Tenant = Annotated[str, Depends(tenant_of)]

    async def run(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(function, clickhouse, *args, **kwargs)

    def known_rule(rule: str) -> None:
        """One answer for a rule name the configuration lacks, on every route that takes one."""
        if config.activation.rule(rule) is None:
            raise HTTPException(404, f"no activation rule named {rule!r}; see /v1/activation-rules")

    @router.get("/v1/activation-rules", summary="The activation rules of the configuration")
    async def rules(tenant: Tenant) -> list[dict[str, Any]]:
        return [r.model_dump(mode="json") for r in config.activation.rules]

    @router.get(
        "/v1/activations",
        response_model=list[ActivationOut],
        summary="Activation outcomes of the tenant, or of one account or user, newest first",
        responses=answers(404),
    )
    async def activations(
        tenant: Tenant,
        rule: str | None = None,
        account: str | None = None,
        user_id: str | None = None,
        type: OutcomeType | None = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[ActivationOut]:
        if rule is not None:
            known_rule(rule)
        result: list[ActivationOut] = await run(
            activation_query.list_outcomes, tenant, rule=rule, account=account, user=user_id,
            kind=None if type is None else type.value, limit=limit, offset=offset,
        )  # fmt: skip
        return result

    @router.get(
        "/v1/activations/cohorts",
        response_model=CohortAnswer,
        summary="Per signup cohort: subjects, activated, missed, rate, time to value",
        responses=answers(404),
    )
    async def cohorts(
        tenant: Tenant,
        rule: str,
        cohort: Cohort = Cohort.WEEK,
        tz: str = "UTC",
        start: Annotated[WireTime | None, Query(alias="from", description=STARTS_FROM)] = None,
        to: Annotated[WireTime | None, Query(description="windows opened before this")] = None,
    ) -> dict[str, Any]:
        params.in_range(**{"from": start, "to": to})
        known_rule(rule)
        rows = await run(
            activation_query.cohorts,
            tenant,
            rule,
            cohort,
            params.zone(tz).key,
            start or EPOCH,
            to or LATEST,
        )
        return {"rule": rule, "cohort": cohort.value, "tz": tz,
                "data": rows}  # fmt: skip

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
        rows: list[FeatureUsageOut] = await run(
            feature_query.usage, tenant, start, to, window, params.zone(tz).key, account, feature
        )
        return rows

    @router.get(
        "/v1/features/{feature}/adoption",
        response_model=AdoptionAnswer,
        summary="The share of active accounts that used the feature in the last N days",
    )
    async def adoption(
        tenant: Tenant, feature: str, days: Days = 30, to: To = None
    ) -> dict[str, Any]:
        start, end = params.last_days(days, to)
        found = await run(feature_query.adoption, tenant, feature, start, end)
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
        used, known = await run(feature_query.account_features, tenant, account, start, end,
                                params.zone(tz).key)  # fmt: skip
        return {"account": account, "start": start.isoformat(), "to": end.isoformat(),
                "features_used": len(used), "features_known": known,
                "breadth": len(used) / known if known else 0.0,
                "features": used}  # fmt: skip

    return router
