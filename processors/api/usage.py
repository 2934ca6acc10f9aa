"""The usage API the billing system pulls from: meters, one meter's usage, a period's export."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from pydantic import BaseModel, Field

from processors.api import params
from processors.api.errors import answers
from processors.metering.calendar import is_final
from processors.metering.query import UsageWindow, query_usage
from processors.storage.clickhouse import ClickHouse
from processors.windows import Window, to_millisecond
from schemas.config import ProductConfig
from schemas.events import WireTime
from schemas.meters import Meter

COMPLETE_THROUGH = (
    "The receipt time through which every event is folded by every processor, from the"
    " worker's stored progress; null until it has recorded any. Events received later may"
    " still change the figures."
)
AS_OF = "The moment of the answer: held quantities (time_weighted, seats) are held up to it"


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


def usage_router(
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
        now, through = _now(), complete_through()
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
            "final": is_final(to, config.billing, through),
            "complete_through": _time(through),
            "as_of": now.isoformat(),
            "data": rows,
        }

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
        now, through = _now(), complete_through()
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
            "final": is_final(to, config.billing, through),
            "complete_through": _time(through),
            "as_of": now.isoformat(),
            "data": page,
            "next_cursor": next_cursor,
        }

    return router


def _now() -> datetime:
    """The clock to the millisecond: what held quantities are held up to, and `as_of` says."""
    return to_millisecond(datetime.now(UTC))


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
