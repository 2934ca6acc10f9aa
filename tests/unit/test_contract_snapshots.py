"""Contracts that must not change by accident: the collector's and the worker's OpenAPI documents
(the worker's is what billing systems and growth tools call). The SDK's wire payload is checked
with the SDK, in sdk/tests.

After an intended change, rewrite the snapshots and review their diff:
    UPDATE_SNAPSHOTS=1 .venv/bin/pytest tests/unit/test_contract_snapshots.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tests.apps import bare_collector, bare_read_api

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


def test_the_collector_openapi_document_matches_its_snapshot() -> None:
    check("collector-openapi.json", bare_collector().openapi())


def test_the_worker_read_api_openapi_document_matches_its_snapshot() -> None:
    # the document is built from the routes alone: no query runs, so no engine is needed
    check("worker-openapi.json", bare_read_api().openapi())
