"""Contracts that must not change by accident: the SDK's wire payload, the collector's and the
worker's OpenAPI documents (the worker's is what billing systems and growth tools call).

After an intended change, rewrite the snapshots and review their diff:
    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/unit/test_contract_snapshots.py
"""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from ingest.collector import create_collector
from ingest.limits import Limits
from ingest.sdk import Client, HttpTransport
from ingest.sink import InMemoryEventSink
from processors.clickhouse import ClickHouse
from schemas.config import load_config
from tests.unit.http_stub import serve
from usage_stream.processes import worker_api
from usage_stream.settings import Settings

SNAPSHOTS = Path(__file__).resolve().parent.parent / "snapshots"


def check(name: str, actual: Any) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert path.exists(), f"{path} is missing: run with UPDATE_SNAPSHOTS=1 to write it"
    assert json.loads(path.read_text()) == actual, (
        f"{name} differs from the committed snapshot; if the change is intended, rewrite it with"
        " UPDATE_SNAPSHOTS=1 and review the diff"
    )


def test_the_sdk_wire_payload_matches_its_snapshot() -> None:
    start = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    ticks = itertools.count()
    ids = (f"00000000-0000-4000-8000-{n:012d}" for n in itertools.count(1))

    def clock() -> datetime:
        return start + timedelta(seconds=next(ticks))

    with serve() as stub:
        transport = HttpTransport("wk_snapshot", stub.url, clock=clock)
        client = Client(
            transport=transport, clock=clock, new_id=lambda: next(ids), flush_interval=60
        )
        client.track(
            "user-1",
            "report_created",
            {"charts": 3, "price": Decimal("9.90"), "tags": ("a", "b"), "name": "Übersicht"},
            group_id="acct-1",
            context={"ip": "203.0.113.9"},
        )
        client.identify("user-1", {"plan": "team"}, anonymous_id="anon-1")
        client.group("user-1", "acct-1", {"name": "Acme"})
        client.track(None, "page_viewed", anonymous_id="anon-1", timestamp=start)
        assert client.flush(timeout=30)
        client.shutdown(timeout=5)
    (request,) = stub.requests
    headers = {k: request.headers[k] for k in ("Authorization", "Content-Encoding", "User-Agent")}
    check(
        "sdk-batch-request.json",
        {"path": request.path, "headers": headers, "body": request.document()},
    )


def test_the_collector_openapi_document_matches_its_snapshot() -> None:
    app = create_collector(InMemoryEventSink(), {"wk": "tenant"}, Limits())
    check("collector-openapi.json", app.openapi())


def test_the_worker_read_api_openapi_document_matches_its_snapshot() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "usage-stream.example.toml"
    settings = Settings(read_keys={"tenant": "rk"}, write_keys={"tenant": "wk"})
    # the document is built from the routes alone: no query runs, so no engine is needed
    unused = ClickHouse(client=None)  # type: ignore[arg-type]
    app = worker_api(unused, settings, load_config(example), ready=lambda: True)
    check("worker-openapi.json", app.openapi())
