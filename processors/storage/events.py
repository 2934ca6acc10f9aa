"""Where raw events are kept: the EventStore boundary, its ClickHouse and in-memory versions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np

from processors.model import Delivery
from processors.storage.clickhouse import ClickHouse
from processors.storage.id_filter import ID_HASH_SQL, IdFilter, id_hashes
from processors.storage.staging import TABLE as STAGED
from processors.storage.staging import Staging

# How far before the horizon a filter reaches when it is loaded, so events up to this late (an
# SDK that was offline, a backlog) still take the fast path.
LOAD_SLACK = timedelta(days=7)
DEDUP_HORIZON = timedelta(days=35)  # the store's default, as the settings' dedup_horizon_days
COLUMNS = (
    "tenant", "type", "message_id", "event", "account", "user_id", "anonymous_id", "timestamp",
    "original_timestamp", "sent_at", "received_at", "kafka_partition", "kafka_offset",
    "properties", "traits", "context",
)  # fmt: skip


class EventStore(Protocol):
    def store(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        """Store each event whose (tenant, messageId) is not stored yet; return the originals.

        An original is a delivery that is the first copy of its id: new, or the very Kafka
        message that stored it before (a redelivery after a crash). Copies of an id found at
        another place are duplicates and are left out. Either every new event is stored or the
        call raises and callers retry the whole batch.
        """
        ...

    def forget(self, held: Iterable[int] = ()) -> None:
        """Partitions were assigned or revoked: drop what was remembered of any of them.
        `held`: the partitions the worker holds now, whose batches are to come."""
        ...


def first_of_each_id(deliveries: Sequence[Delivery]) -> list[Delivery]:
    """Drop repeats of a (tenant, messageId) inside one batch, keeping the first."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for delivery in deliveries:
        key = delivery.key
        if key not in seen:
            seen.add(key)
            unique.append(delivery)
    return unique


# The new events of the staged batch into `events`: the engine reads each from its JSON line.
FROM_STAGED = f"""({", ".join(COLUMNS)})
SELECT tenant, type, messageId, event, account, userId, anonymousId, timestamp,
       originalTimestamp, sentAt, receivedAt, kafka_partition, kafka_offset,
       properties, traits, context
FROM {STAGED} WHERE new"""


def originals(
    deliveries: Sequence[Delivery], stored: dict[tuple[str, str], tuple[int, int]]
) -> tuple[list[Delivery], list[Delivery]]:
    """Split a batch into (originals, not yet stored) given the places ids are stored at."""
    kept = [d for d in first_of_each_id(deliveries) if stored.get(d.key, d.place) == d.place]
    return kept, [d for d in kept if d.key not in stored]


class ClickHouseEventStore:
    """Dedup by asking the table itself (its by_message_id projection) before inserting, but
    only about the ids a per-partition Bloom filter of stored ids may hold (see id_filter).

    Every copy of an event has the same Kafka key (tenant:account), so all copies land in one
    partition, which one worker writes at a time: check-then-insert is race-free per id, and a
    filter of one partition's stored ids is complete. A filter is loaded from the table the first
    time its partition appears after an assignment (`forget` drops them all on a rebalance:
    another worker may have written the partition meanwhile), with every id stored since the
    horizon plus LOAD_SLACK before now; a batch looking further back (events older than that
    slack when the filter was loaded) is checked against the table whole, as without filters.

    The batch's originals are staged and the new ones go into `events` by an `INSERT … SELECT`
    from there; the writers that fold in ClickHouse read the same staged batch when given the
    same `staging`.
    """

    def __init__(
        self,
        clickhouse: ClickHouse,
        horizon: timedelta = DEDUP_HORIZON,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        staging: Staging | None = None,
    ) -> None:
        self._ch = clickhouse
        self._staging = staging or Staging(clickhouse)
        self._horizon = horizon
        self._clock = clock
        self._filters: dict[int, tuple[datetime, IdFilter]] = {}  # partition → (floor, filter)
        self._stale = False
        self._held: set[int] = set()

    def forget(self, held: Iterable[int] = ()) -> None:
        """Drop every filter before the next batch: partitions were assigned or revoked. The
        filters of every partition in `held` are loaded with that batch, before it is written,
        rather than each with the first batch its partition appears in: a worker that has just
        been given its partitions pays for them at once, not in the middle of its stream."""
        self._stale = True
        self._held = set(held)

    def store(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        if not deliveries:
            return []
        if self._stale:
            self._filters, self._stale = {}, False
        unique = first_of_each_id(deliveries)
        keys = [d.key for d in unique]
        hashes = id_hashes(keys)
        since: datetime = min(d.event.timestamp for d in unique) - self._horizon
        rows_of: dict[int, list[int]] = {}
        for i, d in enumerate(unique):
            rows_of.setdefault(d.partition, []).append(i)
        self._load((set(rows_of) | self._held) - set(self._filters), since)
        maybe = np.ones(len(unique), dtype=np.bool_)
        for partition, rows in rows_of.items():
            floor, known = self._filters[partition]
            if since >= floor:  # else the filter does not reach back that far: ask the table
                maybe[rows] = known.may_hold(hashes[rows])
        asked = [d for d, ask in zip(unique, maybe.tolist(), strict=True) if ask]
        stored = self._stored_places(asked, since) if asked else {}
        if stored:
            kept, new = originals(unique, stored)
            self._staging.load(kept, [d.key not in stored for d in kept])
            fresh = [key not in stored for key in keys]
        else:  # the usual batch: none of its ids stored before
            kept = new = unique
            fresh = [True] * len(unique)
            self._staging.load(kept, fresh)
        if new:
            self._ch.insert_select("events", FROM_STAGED, {}, rows=len(new))
        is_new = np.array(fresh, dtype=np.bool_)
        for partition, rows in rows_of.items():
            _, known = self._filters[partition]
            known.add(hashes[rows][is_new[rows]])
            if known.full:
                del self._filters[partition]  # loaded again, larger, with its next batch
        return kept

    def _load(self, partitions: set[int], since: datetime) -> None:
        if not partitions:
            return
        floor = min(self._clock() - self._horizon - LOAD_SLACK, since)
        # one partition at a time: a load holds one partition's ids in memory, not all of them
        for partition in sorted(partitions):
            found = (
                self._ch.query_np(
                    f"SELECT {ID_HASH_SQL} FROM events WHERE kafka_partition = {{p:UInt32}}"
                    " AND timestamp >= {floor:DateTime64(3, 'UTC')}",
                    {"p": partition, "floor": floor},
                )
                .ravel()
                .astype(np.uint64)
            )
            self._filters[partition] = (floor, IdFilter(2 * len(found), found))

    def _stored_places(
        self, batch: Sequence[Delivery], since: datetime
    ) -> dict[tuple[str, str], tuple[int, int]]:
        # Two flat arrays bind and match about 3x faster than one array of (tenant, id) tuples.
        # They select a superset (an id of one tenant that another tenant of the batch also
        # sent); `originals` looks up exact (tenant, id) keys, so the extra rows change nothing.
        tenants = sorted({d.event.tenant for d in batch})
        found: dict[tuple[str, str], tuple[int, int]] = {}
        for ids in _chunks(list({d.event.message_id for d in batch})):
            rows = self._ch.query(
                "SELECT tenant, message_id, kafka_partition, kafka_offset FROM events"
                " WHERE tenant IN {tenants:Array(String)} AND message_id IN {ids:Array(String)}"
                " AND timestamp >= {since:DateTime64(3, 'UTC')}",
                {"tenants": tenants, "ids": ids, "since": since},
            )
            found |= {(r[0], r[1]): (int(r[2]), int(r[3])) for r in rows}
        return found


# A ClickHouse server takes a query parameter of at most 128 KiB (http_max_field_value_size):
# a batch's ids go in parts under that, quotes and commas included.
PARAMETER_BYTES = 96 * 1024


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    part: list[str] = []
    size = 0
    for id_ in ids:
        length = len(id_.encode()) * 2 + 3  # escaped at worst, quoted, a comma
        if part and size + length > PARAMETER_BYTES:
            yield part
            part, size = [], 0
        part.append(id_)
        size += length
    if part:
        yield part


class InMemoryEventStore:
    """For unit tests: the same contract, kept in a dict; `fail_next` injects failures."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], Delivery] = {}
        self.fail_next = 0

    def forget(self, held: Iterable[int] = ()) -> None:
        pass  # it remembers nothing but the events themselves

    def store(self, deliveries: Sequence[Delivery]) -> list[Delivery]:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("injected store failure")
        places = {key: d.place for key, d in self.events.items()}
        kept, new = originals(deliveries, places)
        self.events.update((d.key, d) for d in new)
        return kept
