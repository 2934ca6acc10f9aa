"""The usage export the billing system pulls a period with: every meter and customer, paged."""

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from processors.api import params
from processors.api.usage_answers import AS_OF, COMPLETE_THROUGH, answer_moment, standing
from processors.metering.query import UsageWindow, query_usage
from processors.storage.clickhouse import ClickHouse
from schemas.config import ProductConfig


class ExportRow(UsageWindow):
    meter: str
    unit: str


class ExportAnswer(BaseModel):
    period: str
    start: str
    to: str
    final: bool = Field(description="The period is final: its figures can no longer change")
    complete_through: str | None = Field(description=COMPLETE_THROUGH)
    as_of: str = Field(description=AS_OF)
    data: list[ExportRow]
    next_cursor: str | None


def usage_export_router(
    clickhouse: ClickHouse,
    config: ProductConfig,
    tenant_of: Callable[..., str],
    complete_through: Callable[[], datetime | None] = lambda: None,
) -> APIRouter:
    router = APIRouter(tags=["usage"])
    Tenant = Annotated[str, Depends(tenant_of)]

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
        meter_index, offset = params.uncursor(cursor, len(config.meters))
        now, through = answer_moment(), complete_through()
        page: list[ExportRow] = []
        next_cursor = None
        while meter_index < len(config.meters) and len(page) < limit:
            meter = config.meters[meter_index]
            wanted = limit - len(page)
            rows = await asyncio.to_thread(
                query_usage, clickhouse, tenant, meter, config.billing, start, to,
                group_by=meter.group_by, limit=wanted + 1, offset=offset, now=now,
                complete_through=through,
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
            **standing(to, config.billing, now, through),
            "data": page,
            "next_cursor": next_cursor,
        }

    return router
