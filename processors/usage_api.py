"""The usage API the billing system pulls from: meters, one meter's usage, a period's export."""

import asyncio
import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel

from processors.clickhouse import ClickHouse
from processors.metering import period_end, period_start
from processors.usage_query import Window, is_final, query_usage
from schemas.config import ProductConfig
from schemas.events import UtcDatetime
from schemas.meters import Meter


class UsageWindow(BaseModel):
    window_start: str
    window_end: str
    customer: str
    groups: dict[str, str]
    quantity: str | None
    adjusted_quantity: str | None
    events: int
    late_events: int
    skipped_events: int
    final: bool


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


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HTTPException(400, f"tz {name!r} is not an IANA time zone") from None


def _cursor(meter_index: int, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps([meter_index, offset]).encode()).decode()


def _uncursor(cursor: str | None) -> tuple[int, int]:
    if not cursor:
        return 0, 0
    try:
        meter_index, offset = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return int(meter_index), int(offset)
    except (ValueError, TypeError):
        raise HTTPException(400, "cursor is not one this API gave out") from None


def _period(text: str, config: ProductConfig) -> tuple[datetime, datetime]:
    try:
        month = datetime.strptime(text, "%Y-%m")
    except ValueError:
        raise HTTPException(400, f"period {text!r}: give a month as YYYY-MM") from None
    zone = config.billing.zone
    middle = month.replace(day=15, tzinfo=zone).astimezone(UTC)
    return period_start(middle, config.billing), period_end(middle, config.billing)


def usage_router(
    clickhouse: ClickHouse, config: ProductConfig, tenant_of: Callable[[Request], str]
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
    )
    async def usage(
        tenant: Tenant,
        name: str,
        start: Annotated[UtcDatetime, Query(alias="from", description="inclusive, to the minute")],
        to: Annotated[UtcDatetime, Query(description="exclusive, to the minute")],
        window: Window = Window.TOTAL,
        tz: Annotated[str, Query(description="IANA zone for hour/day/month windows")] = "UTC",
        customer: Annotated[list[str] | None, Query(description="one or more accounts")] = None,
        group_by: Annotated[list[str] | None, Query(description="of the meter's group_by")] = None,
        by_customer: bool = True,
    ) -> dict[str, Any]:
        meter = meter_named(name)
        if start >= to:
            raise HTTPException(400, "`from` must be before `to`")
        try:
            rows = await asyncio.to_thread(
                query_usage, clickhouse, tenant, meter, config.billing, start, to, window,
                _zone(tz), customer, group_by, by_customer,
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
            "data": [r.as_json() for r in rows],
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
        start, to = _period(period, config)
        meter_index, offset = _uncursor(cursor)
        page: list[dict[str, Any]] = []
        next_cursor = None
        while meter_index < len(config.meters) and len(page) < limit:
            meter = config.meters[meter_index]
            wanted = limit - len(page)
            rows = await asyncio.to_thread(
                query_usage, clickhouse, tenant, meter, config.billing, start, to,
                group_by=meter.group_by, limit=wanted + 1, offset=offset,
            )  # fmt: skip
            page += [
                {"meter": meter.name, "unit": meter.unit, **r.as_json()} for r in rows[:wanted]
            ]
            if len(rows) > wanted:
                offset += wanted
                next_cursor = _cursor(meter_index, offset)
                break
            meter_index, offset = meter_index + 1, 0
        if next_cursor is None and meter_index < len(config.meters):
            next_cursor = _cursor(meter_index, offset)
        return {
            "period": period,
            "start": start.isoformat(),
            "to": to.isoformat(),
            "final": _final(to),
            "data": page,
            "next_cursor": next_cursor,
        }

    return router
