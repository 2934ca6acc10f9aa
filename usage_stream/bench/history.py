"""Stored history for the benchmark: N events written straight into a worker's `events` table.

Generated inside ClickHouse (INSERT … SELECT FROM numbers), so 20 million take about a minute,
not the hours sending them would: event times spread over the dedup horizon before now, three
tenants, 5,000 accounts each, random ids, every partition of the topic. The worker then starts
on that table and its rate is compared with its rate on empty tables, in the same bench run.
Run as its own process before the worker starts: `python -m usage_stream.bench.history --dsn …
--database … --events N --partitions P`; the bench stores it on its server, in the database the
worker then writes to.
"""

from __future__ import annotations

import argparse
import sys
import time

from processors.storage.clickhouse import open_clickhouse
from usage_stream.bench import database

CHUNK = 5_000_000  # rows per INSERT … SELECT: one status line each
INSERT = """
INSERT INTO events (tenant, type, message_id, event, account, user_id, anonymous_id, timestamp,
                    received_at, kafka_partition, kafka_offset, properties, traits, context)
SELECT
    ['history-a', 'history-b', 'history-c'][number % 3 + 1],
    'track',
    toString(generateUUIDv4(number)),
    ['api_call', 'report_created', 'dashboard_viewed'][intHash32(number) % 3 + 1],
    concat('acct-', toString(intHash64(number) % 5000)),
    concat('u-', toString(intHash64(number + 1) % 50000)),
    '',
    now64(3) - toIntervalMillisecond(intHash64(number + 2) % {horizon_ms:UInt64}),
    now64(3) - toIntervalMillisecond(intHash64(number + 2) % {horizon_ms:UInt64}),
    number % {partitions:UInt32},
    intDiv(number, {partitions:UInt32}),
    '{"ms":1}',
    '{}',
    '{}'
FROM numbers({start:UInt64}, {count:UInt64})
"""


def preload(where: tuple[str, str], events: int, partitions: int, horizon_days: int = 35) -> float:
    """Insert `events` history rows into `where` (dsn, database); returns the seconds it took."""
    clickhouse = open_clickhouse(*where, database.password())
    started = time.monotonic()
    for start in range(0, events, CHUNK):
        count = min(CHUNK, events - start)
        clickhouse.command(
            INSERT,
            {
                "start": start,
                "count": count,
                "partitions": partitions,
                "horizon_ms": horizon_days * 86_400_000,
            },
        )
        print(
            f"history: {start + count:,} of {events:,} events stored"
            f" ({time.monotonic() - started:.0f}s)",
            file=sys.stderr,
            flush=True,
        )
    # Settled history is merged history: without this, merging the fresh parts would compete
    # with the worker for the CPU while it is measured.
    clickhouse.command("OPTIMIZE TABLE events FINAL")
    print(f"history: merged ({time.monotonic() - started:.0f}s)", file=sys.stderr, flush=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    database.add_arguments(parser, "usage_stream")  # the worker's
    parser.add_argument("--events", type=int, required=True)
    parser.add_argument("--partitions", type=int, required=True)
    args = parser.parse_args()
    preload((args.dsn, args.database), args.events, args.partitions)


if __name__ == "__main__":
    main()
