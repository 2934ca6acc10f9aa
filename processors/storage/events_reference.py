"""`events` rows built in Python: the reference the rows ClickHouse builds from the staged batch
(processors.storage.events.FROM_STAGED) are held to by a property-based test
(tests/integration/test_sql_folds_clickhouse.py). The worker does not run it."""

from __future__ import annotations

import json
from typing import Any

import orjson

from processors.model import Delivery


def _json(value: dict[str, Any]) -> str:
    """Compact JSON text: orjson's, or json's for what orjson refuses (integers past 64 bits),
    the same JSON value either way."""
    try:
        return orjson.dumps(value).decode()
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def to_row(d: Delivery) -> list[Any]:
    """One delivery as an `events` row, in processors.storage.events.COLUMNS order."""
    e = d.event
    return [
        e.tenant, e.type, e.message_id, e.event, e.account, e.user_id, e.anonymous_id,
        e.timestamp, e.original_timestamp, e.sent_at, e.received_at, d.partition, d.offset,
        _json(e.properties), _json(e.traits), _json(e.context),
    ]  # fmt: skip
