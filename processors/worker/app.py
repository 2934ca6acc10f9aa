"""The worker's faust app: `events` a fetch at a time (processors.worker.bulk), one pass of every
processor over each batch, then its offsets committed.

A batch goes through every processor once, in order: the raw store and the dead-letter topic,
metering and feature usage (in a thread), then the loop's steps (activation, whose faust tables
change only on the event loop); only then are its offsets committed, so Kafka holds no commit
that ClickHouse and the tables do not. Exactness does not rest on the commit alone: every write
is idempotent per Kafka place (processors.worker.batch), and a batch that lacks offsets the
worker never saw (a rebalance, offsets moved by hand) is completed from Kafka first
(processors.worker_progress).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from processors.delivery.retry import retry_forever
from processors.model import Delivery, RawMessage, Rejected, offset_marks
from processors.storage.events import EventStore
from processors.worker.batch import BatchResult, Processor, run_batch
from processors.worker.bulk import WorkerApp
from processors.worker_progress.gaps import with_missing
from processors.worker_progress.receipts import received_through
from processors.worker_progress.store import WorkerProgress

# A step that runs on the event loop after the processors, on the batch's messages (with what
# was missing filled in) and those of them that are events, decoded; it calls `give_up` between
# retries, which raises when the batch is being abandoned.
LoopStep = Callable[[list[RawMessage], list[Delivery], Callable[[], None]], Awaitable[None]]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AppConfig:
    app_id: str
    bootstrap: str
    events_topic: str
    invalid_topic: str
    batch_size: int = 10_000
    batch_seconds: float = 0.25
    replication_factor: int = 1
    # how long a dead worker keeps its partitions: a restart after a crash waits this long
    session_timeout: float = 10.0
    # faust's own files (table state); under the data directory, not the working directory
    datadir: str = ".usage-stream/faust"
    # how long after its receipt an event may still reach Kafka (Settings.receipt_slack_seconds)
    receipt_slack: timedelta = timedelta(seconds=30)


@dataclass
class WorkerState:
    """What the worker's readiness and metrics read: is it assigned, what has it done."""

    assigned: bool = False
    partitions: set[int] = field(default_factory=set)  # of the events topic, held now
    batches: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    failures: int = 0
    on_batch: list[Callable[[BatchResult, float], None]] = field(default_factory=list)
    on_failure: list[Callable[[Exception], None]] = field(default_factory=list)


def dead_letter_headers(rejected: Rejected) -> list[tuple[str, bytes]]:
    return [
        ("reason", rejected.reason.encode()),
        ("source-partition", str(rejected.message.partition).encode()),
        ("source-offset", str(rejected.message.offset).encode()),
    ]


def faust_app(config: AppConfig) -> WorkerApp:
    """The worker's faust app, with nothing routed yet: raw bytes in and out."""
    return WorkerApp(
        config.app_id,
        broker=[f"kafka://{host}" for host in config.bootstrap.split(",")],
        web_enabled=False,
        datadir=config.datadir,
        key_serializer="raw",
        value_serializer="raw",
        consumer_auto_offset_reset="earliest",
        topic_replication_factor=config.replication_factor,
        # The bulk route commits each batch itself; faust's timer commits the rest once a second.
        broker_commit_interval=1.0,
        broker_session_timeout=config.session_timeout,
        broker_heartbeat_interval=min(3.0, config.session_timeout / 3),
        producer_acks=-1,
        # Record batches of up to 512 KiB (16 KiB by default): a batch's activation states go to
        # their changelog a record batch at a time (processors.activation.tables), and a state
        # holds up to 5,000 hits; well under the broker's 1 MB message limit.
        producer_max_batch_size=512 * 1024,
    )


def build_worker(
    app: WorkerApp,
    config: AppConfig,
    store: EventStore,
    processors: Sequence[Processor],
    state: WorkerState,
    progress: WorkerProgress,
    steps: Sequence[LoopStep] = (),
) -> None:
    """Route `events` on `app` through the store, every processor and `steps`, in that order."""
    invalid = app.topic(config.invalid_topic, key_type=bytes, value_type=bytes, internal=False)

    def failed(exc: Exception, backoff: float) -> None:
        state.failures += 1
        for hook in state.on_failure:
            hook(exc)
        log.warning("batch not written, retrying in %.1fs: %r", backoff, exc)

    def complete(messages: list[RawMessage]) -> list[RawMessage]:
        unwritten = progress.first_unwritten(m.partition for m in messages)
        return with_missing(config.bootstrap, config.events_topic, messages, unwritten)

    async def write(batch: list[RawMessage]) -> tuple[list[RawMessage], BatchResult]:
        messages = await asyncio.to_thread(complete, batch)
        result = await asyncio.to_thread(run_batch, messages, store, processors)
        for rejected in result.rejected:
            sent = await invalid.send(
                key=rejected.message.key,
                value=rejected.message.value,
                headers=dead_letter_headers(rejected),
            )
            await sent  # held by Kafka before the source offset may be committed
        through = received_through(result.deliveries, config.receipt_slack)
        await asyncio.to_thread(progress.record, offset_marks(messages), through)
        return messages, result

    async def handle(batch: list[RawMessage]) -> None:
        started = asyncio.get_running_loop().time()
        messages, result = await retry_forever(lambda: write(batch), failed, route.check)
        for step in steps:
            await step(messages, result.deliveries, route.check)
        await app.commit_bulk(offset_marks(messages))
        state.batches += 1
        state.stored += result.stored
        state.duplicates += result.duplicates
        state.rejected += len(result.rejected)
        elapsed = asyncio.get_running_loop().time() - started
        for hook in state.on_batch:
            hook(result, elapsed)

    route = app.route_bulk(config.events_topic, handle, config.batch_size, config.batch_seconds)

    def events_partitions(args: tuple[Any, ...], kwargs: dict[str, Any], name: str) -> set[int]:
        tps = kwargs.get(name, args[0] if args else set())
        return {tp.partition for tp in tps if tp.topic == config.events_topic}

    async def assigned(sender: Any, *args: Any, **kwargs: Any) -> None:
        state.assigned = True
        state.partitions = events_partitions(args, kwargs, "assigned")
        store.forget(state.partitions)

    async def revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
        state.partitions -= events_partitions(args, kwargs, "revoked")
        store.forget(state.partitions)

    # mode types receivers as sync-or-awaitable callables that mypy cannot match to a coroutine
    app.on_partitions_assigned.connect(assigned)  # type: ignore[arg-type]
    app.on_partitions_revoked.connect(revoked)  # type: ignore[arg-type]
