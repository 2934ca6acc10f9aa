"""The usage API the billing system pulls from: meters, one meter's usage, a period's export."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel

from processors.api import params
from processors.api.errors import answers
from processors.metering.calendar import is_final
from processors.metering.query import UsageWindow, query_usage
from processors.storage.clickhouse import ClickHouse
from processors.windows import Window
from schemas.config import ProductConfig
from schemas.events import WireTime
from schemas.meters import Meter


class UsageAnswer(BaseModel):
    meter: str
    unit: str
    aggregation: str
    start: str
    to: str
    window: str
    tz: str
    final: bool
    data: list[UsageWindow]


class ExportRow(UsageWindow):
    meter: str
    unit: str


class ExportAnswer(BaseModel):
    period: str
    start: str
    to: str
    final: bool
    data: list[ExportRow]
    next_cursor: str | None


def usage_router(
    clickhouse: ClickHouse, config: ProductConfig, tenant_of: Callable[..., str]
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
        start: Annotated[WireTime, Query(alias="from", description="inclusive, to the minute")],
        to: Annotated[WireTime, Query(description="exclusive, to the minute")],
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
        try:
            rows = await asyncio.to_thread(
                query_usage, clickhouse, tenant, meter, config.billing, start, to, window,
                params.zone(tz), customer, group_by, by_customer,
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
            "final": _final(to),
            "data": rows,
        }

    def _final(to: datetime) -> bool:
        return is_final(to, config.billing, datetime.now(UTC))

    @router.get(
        "/v1/usage/export",
        response_model=ExportAnswer,
        summary="Every meter and customer of one billing period, page by page",
    )
    async def export(
        tenant: Tenant,
        period: Annotated[str, Query(description="billing month, YYYY-MM, in the billing zone")],
        limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
        cursor: str | None = None,
    ) -> dict[str, Any]:
        start, to = params.billing_period(period, config.billing)
        meter_index, offset = params.uncursor(cursor)
        page: list[ExportRow] = []
        next_cursor = None
        while meter_index < len(config.meters) and len(page) < limit:
            meter = config.meters[meter_index]
            wanted = limit - len(page)
            rows = await asyncio.to_thread(
                query_usage, clickhouse, tenant, meter, config.billing, start, to,
                group_by=meter.group_by, limit=wanted + 1, offset=offset,
            )  # fmt: skip
            page += [
                ExportRow(meter=meter.name, unit=meter.unit, **r.model_dump())
                for r in rows[:wanted]
            ]
            if len(rows) > wanted:
                offset += wanted
                next_cursor = params.cursor(meter_index, offset)
                break
            meter_index, offset = meter_index + 1, 0
        if next_cursor is None and meter_index < len(config.meters):
            next_cursor = params.cursor(meter_index, offset)
        return {
            "period": period,
            "start": start.isoformat(),
            "to": to.isoformat(),
            "final": _final(to),
            "data": page,
            "next_cursor": next_cursor,
        }

    return router
