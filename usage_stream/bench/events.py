"""Synthetic product events for the benchmark: Segment batches as SDKs send them, built fast.

The load generator must not be the bottleneck of what it measures, so bodies are formatted
from templates rather than serialised dict by dict; their contents match what the example
meters count (api calls with endpoints and durations, reports, exports, dashboards).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime

from schemas import EnrichedEvent

ACCOUNTS = 1000  # spread over every partition; one account's events stay ordered on one
USERS_PER_ACCOUNT = 5
_SHAPES = (
    ("api_call", {"endpoint": "/v1/search", "duration_ms": 37, "status": 200}),
    ("api_call", {"endpoint": "/v1/ingest", "duration_ms": 412, "status": 201}),
    ("api_call", {"endpoint": "/v1/reports", "duration_ms": 95, "status": 429}),
    ("dashboard_viewed", {"dashboard": "weekly-active", "widgets": 6}),
    ("report_created", {"template": "funnel", "charts": 3}),
    ("export_csv", {"rows": 1200, "bytes": 96000}),
    ("api_call", {"endpoint": "/v1/users", "duration_ms": 12, "status": 200}),
    ("feature_used", {"feature": "saved_filters", "surface": "web"}),
)
_TRACK = (
    '{{"type":"track","messageId":"{id}","userId":"u-{account}-{user}","groupId":"acct-{account}",'
    '"event":"{event}","properties":{properties},"timestamp":"{at}",'
    '"context":{{"library":{{"name":"usage-stream-bench","version":"1"}},"ip":"127.0.0.1"}}}}'
)
_PROPERTIES = [json.dumps(p, separators=(",", ":")) for _, p in _SHAPES]


class EventSource:
    """An endless supply of distinct events; ids are `<run>-<n>`, unique across the run."""

    def __init__(self, run: str, start: int = 0) -> None:
        self._run = run
        self._n = itertools.count(start)

    def batch_body(self, size: int) -> bytes:
        """One /v1/batch body of `size` track events, stamped now."""
        at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        items = []
        for _ in range(size):
            n = next(self._n)
            shape = n % len(_SHAPES)
            items.append(
                _TRACK.format(
                    id=f"{self._run}-{n}",
                    account=n % ACCOUNTS,
                    user=(n // ACCOUNTS) % USERS_PER_ACCOUNT,
                    event=_SHAPES[shape][0],
                    properties=_PROPERTIES[shape],
                    at=at,
                )
            )
        return f'{{"batch":[{",".join(items)}],"sentAt":"{at}"}}'.encode()

    def enriched(self, tenant: str, count: int) -> Iterator[EnrichedEvent]:
        """Events as the collector puts them on Kafka, for loading a topic directly."""
        now = datetime.now(UTC)
        for _ in range(count):
            n = next(self._n)
            event, properties = _SHAPES[n % len(_SHAPES)]
            account = n % ACCOUNTS
            yield EnrichedEvent(
                tenant=tenant,
                type="track",
                message_id=f"{self._run}-{n}",
                event=event,
                account=f"acct-{account}",
                user_id=f"u-{account}-{(n // ACCOUNTS) % USERS_PER_ACCOUNT}",
                properties=properties,
                context={"library": {"name": "usage-stream-bench", "version": "1"}},
                timestamp=now,
                original_timestamp=now,
                sent_at=now,
                received_at=now,
            )
