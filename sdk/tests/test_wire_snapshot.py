"""The SDK's wire payload must not change by accident: the exact request it sends is checked
against a committed snapshot.

After an intended change, rewrite it and review its diff:
    UPDATE_SNAPSHOTS=1 sdk/.venv/bin/pytest sdk/tests/test_wire_snapshot.py
"""

from __future__ import annotations

import itertools
import json
import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from stand_in import serve
from usage_stream_sdk import Client, HttpTransport

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "sdk-batch-request.json"


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
    actual = {"path": request.path, "headers": headers, "body": request.document()}
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(json.dumps(actual, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    assert json.loads(SNAPSHOT.read_text()) == actual, (
        "the SDK's request differs from the committed snapshot; if the change is intended,"
        " rewrite it with UPDATE_SNAPSHOTS=1 and review the diff"
    )
