"""The worker's HTTP side: liveness, readiness and the tenant-scoped read API over ClickHouse.

The worker, which writes, also answers reads, on the same ClickHouse client.
"""

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from processors.api.account_health import account_health_router
from processors.api.activations import activations_router
from processors.api.alerts import alerts_router
from processors.api.auth import read_key_tenant
from processors.api.errors import answers
from processors.api.events import events_router
from processors.api.features import features_router
from processors.api.meters import meters_router
from processors.api.usage_export import usage_export_router
from processors.api.webhooks import webhooks_router
from processors.storage.clickhouse import ClickHouse
from runtime.api_docs import serve_docs
from schemas.config import ProductConfig


class Readiness(BaseModel):
    ready: bool
    clickhouse: bool = Field(description="ClickHouse answers a query")
    kafka: bool = Field(description="Partitions held, the broker answering, tables restored")


def create_read_api(
    clickhouse: ClickHouse,
    product: ProductConfig,
    tenants_by_read_key: Mapping[str, str],
    ready: Callable[[], bool],
    complete_through: Callable[[], datetime | None] = lambda: None,
) -> FastAPI:
    """Raw events, the usage API and the analytics API, each behind a tenant's read key.
    `complete_through`: the receipt time through which every event is folded (the worker's
    stored progress); usage answers carry it, and no period is final before it passes."""
    app = FastAPI(title="usage-stream read API", version="1", docs_url=None, redoc_url=None)
    serve_docs(app)
    tenant_of = read_key_tenant(tenants_by_read_key)
    for router in (
        meters_router(clickhouse, product, tenant_of, complete_through),
        usage_export_router(clickhouse, product, tenant_of, complete_through),
        activations_router(clickhouse, product, tenant_of),
        features_router(clickhouse, tenant_of),
        events_router(clickhouse, tenant_of),
        account_health_router(clickhouse, product, tenant_of),
        alerts_router(clickhouse, product, tenant_of),
        webhooks_router(clickhouse, tenant_of),
    ):
        app.include_router(router, responses=answers(400, 401))

    @app.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        summary="ClickHouse answers and the consumer is running",
        response_model=Readiness,
        responses={503: {"model": Readiness, "description": "Not ready: see which part"}},
    )
    async def readyz() -> JSONResponse:
        try:
            await asyncio.to_thread(clickhouse.query, "SELECT 1", {})
            answers = True
        except Exception:  # any failure to answer means not ready
            answers = False
        consuming = ready()
        ok = answers and consuming
        body = {"ready": ok, "clickhouse": answers, "kafka": consuming}
        return JSONResponse(body, status_code=200 if ok else 503)

    return app
