"""The webhook delivery log of a tenant: each delivery of a usage alert to one of its
endpoints, with every attempt's HTTP status or error, filtered by status."""

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from processors.storage.clickhouse import ClickHouse
from processors.webhooks.deliveries import DeliveryLog, Listed, LoggedAttempt
from processors.webhooks.model import DeliveryStatus


class AttemptOut(BaseModel):
    attempt: int = Field(description="1, 2, …; 0 is the delivery being recorded, not a try")
    at: str
    status: DeliveryStatus = Field(description="What this attempt left the delivery as")
    status_code: int | None = Field(description="The endpoint's HTTP status; null for none")
    error: str = Field(description="Why it failed (timeout, refused, the answer's start)")
    latency_seconds: float
    next_attempt_at: str | None


class DeliveryOut(BaseModel):
    id: str = Field(description="The alert record's id: the `webhook-id` of every attempt")
    endpoint: str = Field(description="The endpoint's configured name, or its place")
    url: str = Field(description="Its URL without credentials or query")
    kind: str
    account: str
    status: DeliveryStatus
    created_at: str
    next_attempt_at: str | None = Field(description="When a pending delivery is tried next")
    attempts: list[AttemptOut] = Field(description="Oldest first")


class DeliveriesOut(BaseModel):
    deliveries: list[DeliveryOut] = Field(description="The most recently tried first")


def webhooks_router(clickhouse: ClickHouse, tenant_of: Callable[..., str]) -> APIRouter:
    router = APIRouter(tags=["webhooks"])
    Tenant = Annotated[str, Depends(tenant_of)]
    log = DeliveryLog(clickhouse)

    @router.get(
        "/v1/webhooks/deliveries",
        response_model=DeliveriesOut,
        summary="Deliveries of usage alerts to the tenant's webhook endpoints, with attempts",
    )
    async def deliveries(
        tenant: Tenant,
        status: Annotated[
            DeliveryStatus | None, Query(description="only deliveries in this state (default: all)")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> DeliveriesOut:
        found = await asyncio.to_thread(log.listing, tenant, status, limit)
        return DeliveriesOut(deliveries=[_delivery(d) for d in found])

    return router


def _delivery(listed: Listed) -> DeliveryOut:
    delivery = listed.delivery
    pending = listed.status is DeliveryStatus.PENDING
    return DeliveryOut(
        id=delivery.record_id,
        endpoint=delivery.endpoint,
        url=listed.url,
        kind=delivery.kind,
        account=delivery.account,
        status=listed.status,
        created_at=delivery.created_at.isoformat(),
        next_attempt_at=delivery.next_attempt_at.isoformat() if pending else None,
        attempts=[_attempt(a) for a in listed.attempts],
    )


def _attempt(attempt: LoggedAttempt) -> AttemptOut:
    return AttemptOut(
        attempt=attempt.number,
        at=attempt.at.isoformat(),
        status=attempt.status,
        status_code=attempt.status_code or None,
        error=attempt.error,
        latency_seconds=attempt.latency_seconds,
        next_attempt_at=_time(attempt.next_attempt_at),
    )


def _time(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
