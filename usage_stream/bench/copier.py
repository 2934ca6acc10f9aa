"""The baseline: a minimal Kafka → ClickHouse copier, no decoding and no processing.

It reads the same topic with aiokafka (the client faust itself runs on), inserts each batch's
raw messages into one table through clickhouse-connect with the same batch limits as the
worker, and commits offsets only after the insert, as the worker does. What the worker does
beyond this is the price of faust and of our processing; the benchmark reports the ratio, with
both over HTTP to the same server. Run as its own process, on a database of its own:
`python -m usage_stream.bench.copier ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from aiokafka import AIOKafkaConsumer

from processors.storage.clickhouse import connect
from usage_stream.bench import database

TABLE = """
CREATE TABLE IF NOT EXISTS copied
(
    kafka_partition UInt32,
    kafka_offset    UInt64,
    key             String,
    value           String,
    stored_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
-- Appended in Kafka order and never read back during the run: the order is only for inserts.
ENGINE = MergeTree ORDER BY (kafka_partition, kafka_offset)
"""
COLUMNS = ["kafka_partition", "kafka_offset", "key", "value"]


def group_consumer(
    bootstrap: str, topic: str, group: str
) -> tuple[AIOKafkaConsumer, asyncio.Event]:
    """A consumer in `group` that commits by hand, from the earliest offset, and the event that
    SIGTERM or SIGINT sets to stop it. Call from the running event loop."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signum, stop.set)
    return consumer, stop


async def copy(
    bootstrap: str,
    topic: str,
    group: str,
    where: tuple[str, str],
    batch_size: int,
    batch_seconds: float,
) -> int:
    """Copy into `where` (dsn, database) until SIGTERM or SIGINT; returns how many messages
    were copied."""
    client = connect(*where, database.password())
    client.command(TABLE)
    consumer, stop = group_consumer(bootstrap, topic, group)
    copied = 0
    await consumer.start()
    try:
        while not stop.is_set():
            found = await consumer.getmany(
                timeout_ms=int(batch_seconds * 1000), max_records=batch_size
            )
            rows = [
                [m.partition, m.offset, m.key or b"", m.value]
                for messages in found.values()
                for m in messages
            ]
            if not rows:
                continue
            await asyncio.to_thread(client.insert, "copied", rows, column_names=COLUMNS)
            await consumer.commit()  # only what ClickHouse holds, like the worker
            copied += len(rows)
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    return copied


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="copy a topic into ClickHouse with no processing")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    database.add_arguments(p, "bench_copier")
    p.add_argument("--batch-size", type=int, default=2000)
    p.add_argument("--batch-seconds", type=float, default=0.25)
    args = p.parse_args(argv)
    where = (args.dsn, args.database)
    copied = asyncio.run(
        copy(args.bootstrap, args.topic, args.group, where, args.batch_size, args.batch_seconds)
    )
    print(f"copied {copied} messages", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
