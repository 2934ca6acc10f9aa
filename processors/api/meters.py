"""The meter routes the billing system pulls from: the meters, and one meter's usage."""

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from processors.api import params
from processors.api.errors import answers
from processors.api.usage_answers import AS_OF, COMPLETE_THROUGH, answer_moment, standing
from processors.metering.query import UsageWindow, query_usage
from processors.storage.clickhouse import ClickHouse
from processors.windows import Window
from schemas.config import ProductConfig
from schemas.events import WireTime
from schemas.meters import Meter

FROM = (
    "inclusive. Per-minute meters (count, sum, ...) take whole minutes; held meters"
    " (time_weighted, seats) any millisecond"
)


class UsageAnswer(BaseModel):
    meter: str
    unit: str
    aggregation: str
    start: str
    to: str
    window: str
    tz: str
    final: bool = Field(description="Every window is final: its figures can no longer change")
    complete_through: str | None = Field(description=COMPLETE_THROUGH)
    as_of: str = Field(description=AS_OF)
    data: list[UsageWindow]


def meters_router(
    clickhouse: ClickHouse,
    config: ProductConfig,
    tenant_of: Callable[..., str],
    complete_through: Callable[[], datetime | None] = lambda: None,
) -> APIRouter:
    router = APIRouter(tags=["usage"])
    Tenant = Annotated[str, Depends(tenant_of)]

    def meter_named(name: str) -> Meter:
        meter = config.meter(name)
        if meter is None:
            raise HTTPException(404, f"no meter named {name!r}; GET /v1/meters lists them")
        return meter

    @router.get("/v1/meters", summary="The meters defined in the configuration")
    async def meters(tenant: Tenant) -> list[dict[str, Any]]:
        return [m.model_dump(mode="json") for m in config.meters]

    @router.get(
        "/v1/meters/{name}/usage",
        response_model=UsageAnswer,
        summary="One meter's quantities over [from, to), per window, customer and group",
        responses=answers(404),
    )
    async def usage(
        tenant: Tenant,
        name: str,
        start: Annotated[WireTime, Query(alias="from", description=FROM)],
        to: Annotated[WireTime, Query(description="exclusive; on the same grid as `from`")],
        window: Window = Window.TOTAL,
        tz: Annotated[str, Query(description="IANA zone for hour/day/month windows")] = "UTC",
        customer: Annotated[list[str] | None, Query(description="one or more accounts")] = None,
        group_by: Annotated[list[str] | None, Query(description="of the meter's group_by")] = None,
        by_customer: bool = True,
    ) -> dict[str, Any]:
        meter = meter_named(name)
        params.in_range(**{"from": start, "to": to})
        if start >= to:
            raise HTTPException(400, "`from` must be before `to`")
        now, through = answer_moment(), complete_through()
        try:
            rows = await asyncio.to_thread(
                query_usage, clickhouse, tenant, meter, config.billing, start, to, window,
                params.zone(tz), customer, group_by, by_customer, now=now,
                complete_through=through,
            )  # fmt: skip
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        return {
            "meter": meter.name,
            "unit": meter.unit,
            "aggregation": meter.aggregation.value,
            "start": start.isoformat(),
            "to": to.isoformat(),
            "window": window.value,
            "tz": tz,
            **standing(to, config.billing, now, through),
            "data": rows,
        }

    return router
