"""Two consumers that split the worker's cost in two: our processing without faust, and faust
with nothing to do. Beside the baseline copier they show where the worker's time goes.

- `process`: aiokafka batches (like the copier) through `run_batch`: decode, dedup, the raw
  event store, metering and feature usage, into a database of its own on the server the worker
  writes to. Activation is left out: it keeps its state in faust tables and cannot run without
  faust.
- `faust`: the worker's faust app, reading `events` a fetch at a time like the worker, whose batch
  handler only commits the batch's offsets: faust's own cost per event.

Run as its own process: `python -m usage_stream.bench.breakdown --mode process|faust ...`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from pathlib import Path

from processors.model import RawMessage, offset_marks
from processors.storage.clickhouse import open_clickhouse
from processors.worker.app import AppConfig, faust_app
from processors.worker.batch import run_batch
from processors.worker.pipeline import build_pipeline
from runtime.heap import settle
from schemas.config import load_config
from usage_stream.bench import database
from usage_stream.bench.copier import group_consumer


async def process(
    bootstrap: str,
    topic: str,
    group: str,
    where: tuple[str, str],
    config: str,
    batch_size: int,
    seconds: float,
) -> None:
    """`run_batch` on aiokafka batches into `where` (dsn, database) until SIGTERM or SIGINT."""
    clickhouse = open_clickhouse(*where, database.password())
    product = load_config(config)
    store, processors = build_pipeline(clickhouse, product)
    consumer, stop = group_consumer(bootstrap, topic, group)
    await consumer.start()
    try:
        while not stop.is_set():
            found = await consumer.getmany(timeout_ms=int(seconds * 1000), max_records=batch_size)
            messages = [
                RawMessage(m.partition, m.offset, m.key, m.value)
                for records in found.values()
                for m in records
            ]
            if messages:
                await asyncio.to_thread(run_batch, messages, store, processors)
                await consumer.commit()
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


def faust_alone(
    bootstrap: str, topic: str, group: str, datadir: str, batch_size: int, seconds: float
) -> None:
    import faust

    Path(datadir).mkdir(parents=True, exist_ok=True)
    # The worker's own app (processors.worker.app.faust_app), with a handler that does nothing.
    config = AppConfig(
        app_id=group, bootstrap=bootstrap, events_topic=topic, invalid_topic="",
        batch_size=batch_size, batch_seconds=seconds, datadir=datadir,
    )  # fmt: skip
    app = faust_app(config)

    async def nothing(batch: list[RawMessage]) -> None:
        await app.commit_bulk(offset_marks(batch))

    app.route_bulk(topic, nothing, batch_size, seconds)
    faust.Worker(app, loglevel="WARN").execute_from_commandline()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="the worker's cost, split: processing or faust alone")
    p.add_argument("--mode", choices=("process", "faust"), required=True)
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    database.add_arguments(p, "usage_stream")  # --mode process only
    p.add_argument("--datadir", help="faust's files for --mode faust, a directory of its own")
    p.add_argument("--config", help="the product config (meters, features) for --mode process")
    p.add_argument("--batch-size", type=int, default=2000)
    p.add_argument("--batch-seconds", type=float, default=0.25)
    args = p.parse_args(argv)
    settle()  # as the worker does (runtime.heap)
    if args.mode == "faust":
        faust_alone(
            args.bootstrap, args.topic, args.group, args.datadir, args.batch_size,
            args.batch_seconds,
        )  # fmt: skip
    else:
        where = (args.bootstrap, args.topic, args.group)
        batches = (args.batch_size, args.batch_seconds)
        store = (args.dsn, args.database)
        asyncio.run(process(*where, store, args.config, *batches))
    return 0


if __name__ == "__main__":
    sys.exit(main())
