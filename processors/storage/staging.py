"""A batch's originals in ClickHouse, parsed there once, for the writes ClickHouse does itself.

Each event goes in as one line of JSON (msgspec writes it in ~1 µs), so building the `events`
rows and folding the feature counters costs the engine a parse of each line instead of Python a
row of objects per event (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from processors.model import Delivery
from processors.storage.clickhouse import ClickHouse

TABLE = "staged_events"
# Named as on Kafka (the contract's camelCase), so a value needs no renaming on its way in.
# A temporary table: one per connection (a worker's own, even on a shared server), in memory,
# gone with the connection; nothing is left behind by a worker that was killed.
_CREATE = f"""
CREATE TEMPORARY TABLE IF NOT EXISTS {TABLE}
(
    tenant            String,
    type              String,
    messageId         String,
    event             String,
    account           String,
    userId            String,
    anonymousId       String,
    timestamp         DateTime64(6, 'UTC'),
    originalTimestamp Nullable(DateTime64(6, 'UTC')),
    sentAt            Nullable(DateTime64(6, 'UTC')),
    receivedAt        DateTime64(6, 'UTC'),
    properties        String,
    traits            String,
    context           String,
    kafka_partition   UInt32,
    kafka_offset      UInt64,
    -- not stored in `events` yet (the rest of the batch are originals redelivered after a crash)
    new               UInt8
)
ENGINE = Memory
"""
# Objects (properties, traits, context) are read into the String columns as their JSON text.
_SETTINGS = {"input_format_json_read_objects_as_strings": 1, "input_format_skip_unknown_fields": 1}


class Staging:
    """The staged batch of one worker: `load` replaces it, the writers read it."""

    def __init__(self, clickhouse: ClickHouse) -> None:
        self._ch = clickhouse
        self._places: list[tuple[int, int]] = []

    def load(self, originals: Sequence[Delivery], new: Sequence[bool]) -> None:
        """Stage `originals` (`new[i]`: the i-th is not stored in `events` yet)."""
        body = b"\n".join(_line(d, is_new) for d, is_new in zip(originals, new, strict=True))
        self._places = []
        self._ch.command(_CREATE)  # again each time: a server's session may have expired since
        self._ch.command(f"TRUNCATE TABLE {TABLE}")
        if body:
            self._ch.raw_insert(TABLE, body, _SETTINGS)
        self._places = [d.place for d in originals]

    def holds(self, originals: Sequence[Delivery]) -> bool:
        """Whether the staged batch is exactly `originals`: a writer handed other events stages
        them itself (`load`), rather than fold what another batch left."""
        return self._places == [d.place for d in originals]


_ENCODE = msgspec.json.Encoder().encode


def _line(d: Delivery, new: bool) -> bytes:
    # Written from the decoded event, not copied from Kafka: only the contract's fields, so
    # nothing a producer added can clash with the place appended here.
    return _ENCODE(d.event)[:-1] + b',"kafka_partition":%d,"kafka_offset":%d,"new":%d}' % (
        d.partition,
        d.offset,
        new,
    )
