"""Where raw events are kept: the EventStore boundary, its ClickHouse and in-memory versions."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from clickhouse_connect.driver.client import Client

from schemas import EnrichedEvent

COLUMNS = (
    "tenant",
    "type",
    "message_id",
    "event",
    "account",
    "user_id",
    "anonymous_id",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
    "properties",
    "traits",
    "context",
)


class EventStore(Protocol):
    def insert_new(self, events: Sequence[EnrichedEvent]) -> int:
        """Store the events whose (tenant, messageId) is not stored yet; return how many were new.

        Either every new event of the call is stored or the call raises and none is: callers
        retry the whole batch, and events already stored by an earlier try are skipped.
        """
        ...


def first_of_each_id(events: Sequence[EnrichedEvent]) -> list[EnrichedEvent]:
    """Drop repeats of a (tenant, messageId) inside one batch, keeping the first."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for event in events:
        key = (event.tenant, event.message_id)
        if key not in seen:
            seen.add(key)
            unique.append(event)
    return unique


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def to_row(event: EnrichedEvent) -> list[Any]:
    return [
        event.tenant,
        event.type,
        event.message_id,
        event.event,
        event.account,
        event.user_id,
        event.anonymous_id,
        event.timestamp,
        event.original_timestamp,
        event.sent_at,
        event.received_at,
        _json(event.properties),
        _json(event.traits),
        _json(event.context),
    ]


class ClickHouseEventStore:
    """Dedup by asking the table itself (its by_message_id projection) before inserting.

    One partition of the events topic is written by one worker at a time, and every copy of an
    event carries the same key, so check-then-insert is race-free per key. Ids are looked up only
    in the months the dedup horizon reaches back from the batch's oldest event.
    """

    def __init__(self, client: Client, horizon: timedelta = timedelta(days=35)) -> None:
        self._client = client
        self._horizon = horizon
        self._lock = threading.Lock()  # one statement at a time on a shared (chDB) client

    def insert_new(self, events: Sequence[EnrichedEvent]) -> int:
        batch = first_of_each_id(events)
        if not batch:
            return 0
        with self._lock:
            stored = self._stored_ids(batch)
            new = [e for e in batch if (e.tenant, e.message_id) not in stored]
            if new:
                self._client.insert("events", [to_row(e) for e in new], column_names=COLUMNS)
        return len(new)

    def _stored_ids(self, batch: Sequence[EnrichedEvent]) -> set[tuple[str, str]]:
        since: datetime = min(e.timestamp for e in batch) - self._horizon
        result = self._client.query(
            "SELECT tenant, message_id FROM events"
            " WHERE (tenant, message_id) IN {keys:Array(Tuple(String, String))}"
            " AND timestamp >= {since:DateTime64(3, 'UTC')}",
            parameters={"keys": [(e.tenant, e.message_id) for e in batch], "since": since},
        )
        return {(row[0], row[1]) for row in result.result_rows}


class InMemoryEventStore:
    """For unit tests: the same contract, kept in a dict."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], EnrichedEvent] = {}
        self.fail_next = 0

    def insert_new(self, events: Sequence[EnrichedEvent]) -> int:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("injected store failure")
        new = [e for e in first_of_each_id(events) if (e.tenant, e.message_id) not in self.events]
        for event in new:
            self.events[(event.tenant, event.message_id)] = event
        return len(new)
