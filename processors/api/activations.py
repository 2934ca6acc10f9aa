"""The activation routes: the configured rules, their outcomes, and signup cohorts."""

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
from processors.storage.clickhouse import ClickHouse
from processors.windows import EPOCH
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


STARTS_FROM = "windows opened at or after this"


def activations_router(
    clickhouse: ClickHouse,
    config: ProductConfig,
    tenant_of: Callable[..., str],
) -> APIRouter:
    router = APIRouter(tags=["analytics"])
    Tenant = Annotated[str, Depends(tenant_of)]

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
        return await asyncio.to_thread(
            activation_query.list_outcomes, clickhouse, tenant, rule=rule, account=account,
            user=user_id, kind=None if type is None else type.value, limit=limit, offset=offset,
        )  # fmt: skip

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
        rows = await asyncio.to_thread(
            activation_query.cohorts,
            clickhouse,
            tenant,
            rule,
            cohort,
            params.zone(tz).key,
            start or EPOCH,
            to or LATEST,
        )
        return {"rule": rule, "cohort": cohort.value, "tz": tz,
                "data": rows}  # fmt: skip

    return router
