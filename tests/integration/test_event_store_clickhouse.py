"""Dedup against ClickHouse with per-partition filters: exact, and asking the table only about
ids the filters may hold (processors.storage.events)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from processors.model import Delivery, Event
from processors.storage.clickhouse import ClickHouse
from processors.storage.events import ClickHouseEventStore
from processors.storage.id_filter import ID_HASH_SQL, id_hashes
from schemas import EnrichedEvent

pytestmark = pytest.mark.integration
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


class Counting(ClickHouse):
    """Counts the dedup lookups (queries on `events` by message id) and the filter loads."""

    def __init__(self, inner: ClickHouse) -> None:
        super().__init__(inner.client)
        self.lookups = 0
        self.loads = 0

    def query_np(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        self.loads += 1  # a filter load: the store's only numpy query
        return super().query_np(sql, parameters)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        if "message_id IN" in sql:
            self.lookups += 1
        return super().query(sql, parameters)


def deliveries(n: int, partition: int = 0, first: int = 0, when: datetime = NOW) -> list[Delivery]:
    return [
        Delivery(
            Event.of(EnrichedEvent(tenant="acme", type="track", message_id=str(uuid.uuid4()),
                                   event="api_call", account="acct-1", user_id="u-1",
                                   timestamp=when, received_at=when)),
            partition,
            first + i,
        )
        for i in range(n)
    ]  # fmt: skip


def store_of(clickhouse: ClickHouse) -> tuple[ClickHouseEventStore, Counting]:
    counting = Counting(clickhouse)
    return ClickHouseEventStore(counting, timedelta(days=35), clock=lambda: NOW), counting


def test_python_and_clickhouse_hash_ids_alike(clickhouse: ClickHouse) -> None:
    keys = [("acme", "m-1"), ("globex", "ü-2"), ("a", "")]
    rows = clickhouse.query(
        f"SELECT {ID_HASH_SQL} FROM (SELECT arrayJoin({{k:Array(Tuple(String, String))}}) AS t,"
        " t.1 AS tenant, t.2 AS message_id)",
        {"k": keys},
    )
    assert [int(r[0]) for r in rows] == [int(h) for h in id_hashes(keys)]


def test_new_ids_are_stored_without_asking_the_table(clickhouse: ClickHouse) -> None:
    store, counting = store_of(clickhouse)
    first = deliveries(500)
    assert store.store(first) == first
    assert counting.lookups == 0
    assert store.store(deliveries(500, first=500)) != []
    assert counting.lookups == 0  # nothing stored could match: the filter says so
    assert clickhouse.query("SELECT count() FROM events")[0][0] == 1000


def test_copies_are_dropped_and_redeliveries_kept_after_a_restart(clickhouse: ClickHouse) -> None:
    before, _ = store_of(clickhouse)
    stored = deliveries(300, partition=2)
    before.store(stored)
    after, counting = store_of(clickhouse)  # a new process: its filter comes from the table
    copies = [Delivery(d.event, 2, 1000 + i) for i, d in enumerate(stored[:100])]
    again = stored[100:150]  # the same Kafka messages, delivered again after a crash
    fresh = deliveries(50, partition=2, first=2000)
    kept = after.store([*copies, *again, *fresh])
    assert kept == [*again, *fresh]
    assert counting.lookups == 1
    assert clickhouse.query("SELECT count() FROM events")[0][0] == 350


def test_a_partition_moved_away_and_back_is_loaded_again(clickhouse: ClickHouse) -> None:
    mine, _ = store_of(clickhouse)
    mine.store(deliveries(10, partition=1))
    other, _ = store_of(clickhouse)  # another worker holds partition 1 for a while
    written_there = deliveries(10, partition=1, first=10)
    other.store(written_there)
    mine.forget()  # the rebalance that gave partition 1 back
    copies = [Delivery(d.event, 1, 100 + i) for i, d in enumerate(written_there)]
    assert mine.store(copies) == []


def test_events_older_than_the_filter_reaches_are_checked_against_the_table(
    clickhouse: ClickHouse,
) -> None:
    old = NOW - timedelta(days=20)
    store, counting = store_of(clickhouse)
    store.store(deliveries(5, partition=3))  # loads the filter: it reaches back 42 days from NOW
    late = deliveries(5, partition=3, first=5, when=old - timedelta(days=30))
    assert store.store(late) == late
    assert counting.lookups == 1  # too old for the filter: the table answered
    copy = [Delivery(late[0].event, 3, 99)]
    assert store.store(copy) == []


def test_the_filters_of_every_held_partition_load_with_the_first_batch(
    clickhouse: ClickHouse,
) -> None:
    before, _ = store_of(clickhouse)
    stored = {p: deliveries(20, partition=p) for p in (0, 1, 2)}
    for batch in stored.values():
        before.store(batch)
    after, counting = store_of(clickhouse)  # a new process, given partitions 0, 1 and 2
    after.forget({0, 1, 2})
    assert after.store(deliveries(5, partition=0, first=100)) != []
    assert counting.loads == 3
    for p in (1, 2):  # their filters came with the first batch: no load, no lookup for new ids
        copies = [Delivery(d.event, p, 500 + i) for i, d in enumerate(stored[p][:3])]
        fresh = deliveries(4, partition=p, first=600)
        assert after.store([*copies, *fresh]) == fresh
    assert counting.loads == 3
    assert clickhouse.query("SELECT count() FROM events")[0][0] == 60 + 5 + 8


def test_a_batch_of_ten_thousand_copies_is_looked_up_on_a_server(clickhouse: ClickHouse) -> None:
    """A server takes a query parameter of at most 128 KiB: 10,000 ids of 36 characters are
    looked up in parts, and every copy is found."""
    store, _ = store_of(clickhouse)
    batch = deliveries(10_000)
    assert len(store.store(batch)) == 10_000
    copies = [Delivery(d.event, 0, d.offset + 10_000) for d in batch]  # sent again: new offsets
    assert (
        ClickHouseEventStore(clickhouse, timedelta(days=35), clock=lambda: NOW).store(copies) == []
    )
