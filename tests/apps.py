"""Both HTTP apps on no backend, for tests of what their routes alone make (the OpenAPI
documents, the documentation pages): nothing here reaches Kafka or ClickHouse."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from ingest.collector import create_collector
from ingest.limits import Limits
from ingest.sink import InMemoryEventSink
from processors.api.app import create_read_api
from processors.storage.clickhouse import ClickHouse
from schemas.config import EXAMPLE_CONFIG, load_config


def bare_collector() -> FastAPI:
    return create_collector(InMemoryEventSink(), {"wk": "tenant"}, Limits())


def bare_read_api() -> FastAPI:
    """The worker's read API; a request that would query ClickHouse fails."""
    unused = ClickHouse(client=None)  # type: ignore[arg-type]
    return create_read_api(unused, load_config(EXAMPLE_CONFIG), {"rk": "tenant"}, lambda: True)


BARE_APPS: dict[str, Callable[[], FastAPI]] = {
    "collector": bare_collector,
    "read API": bare_read_api,
}
