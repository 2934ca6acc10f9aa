"""Activation on each batch of the worker, its state in two faust tables.

It runs on the batch the worker has just written, on the event loop (a faust table may change
only there), before the batch's offsets are committed: one delivery and one pass per event for
every processor. It needs no dedup of its own: a subject's state is a function of the set of its
events (hits keyed by messageId), so an SDK retry or a redelivery applied twice changes nothing.

The two tables:
- `activation_state` (changelog: an internal compacted topic): each undecided subject's window
  and matching events, and per partition a clock (each tenant's event time on it, and the offset
  through which the state has been applied; see processors.activation.engine);
- `activation_outcomes`, whose changelog topic *is* the `activations` topic: publishing an
  outcome and remembering that the subject is decided are one Kafka write. faust restores the
  table from that topic after a restart or a rebalance, so an outcome on the topic is never
  decided and published again, and one that is not on it is decided again, identically.

Each batch is made durable in this order, each step retried until it holds before the next:
0. offsets missing between the state's last applied offset and the batch are read from Kafka
   (a batch skipped while the tables recovered, offsets moved by hand: see `fill_gaps`);
1. ClickHouse: the outcomes (idempotent by id) and the window starts;
2. the outcomes into `activation_outcomes`, i.e. onto the `activations` topic, acked;
3. the subjects' states, acked; 4. the partitions' clocks, acked;
5. only then the worker commits the batch's offsets, so none is committed whose effects are not
   durable.
A SIGKILL anywhere leaves a state the engine resumes from exactly (see its docstring).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from processors.activation.engine import ActivationEngine
from processors.activation.store import ActivationStore
from processors.delivery.retry import retry_forever
from processors.model import Delivery, RawMessage, decode
from processors.worker_progress.gaps import with_missing

log = logging.getLogger(__name__)
SEND_TIMEOUT = 60.0  # seconds to wait for the broker to ack one round of table writes

Write = tuple[int, bytes, bytes | None]  # (partition, key, value); None deletes the key


@dataclass(frozen=True)
class ActivationConfig:
    bootstrap: str
    events_topic: str
    activations_topic: str
    partitions: int  # of `events`; the tables' changelogs (and `activations`) have as many


class TableView:
    """A faust table's local store seen as the engine's StateView / DecidedView."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def get(self, key: bytes) -> bytes | None:
        value = self._table.data.get(key)
        return None if value is None else bytes(value)

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        return list(self._table.data.items())

    def __contains__(self, key: object) -> bool:
        return key in self._table.data


async def write_durably(
    table: Any,
    writes: Sequence[Write],
    on_failure: Callable[[Exception, float], None],
    give_up: Callable[[], None] = lambda: None,
) -> None:
    """Set each key locally and send it to the table's changelog with an explicit partition
    (the source event's: a batch mixes partitions, so faust's current event cannot pick it);
    resend what the broker did not ack until everything is acked."""
    pending = list(writes)
    if not pending:
        return

    async def attempt() -> None:
        nonlocal pending
        for _, key, value in pending:
            if value is None:
                table.data.pop(key, None)
            else:
                table.data[key] = value
        sent = await send_batches(table, pending)
        done, _ = await asyncio.wait([future for _, future in sent], timeout=SEND_TIMEOUT)
        failed: list[tuple[list[Write], BaseException]] = []
        for batch, future in sent:
            if future not in done:
                failed.append((batch, TimeoutError(f"no ack within {SEND_TIMEOUT:g}s")))
            elif (error := future.exception()) is not None:
                failed.append((batch, error))
        pending = [write for batch, _ in failed for write in batch]
        if failed:
            error = failed[0][1]
            raise error if isinstance(error, Exception) else RuntimeError(repr(error))

    await retry_forever(attempt, on_failure, give_up)


async def send_batches(table: Any, writes: Sequence[Write]) -> list[tuple[list[Write], Any]]:
    """The writes onto the table's changelog, as few Kafka record batches per partition as the
    producer's batch size allows, each with the future of its ack. Built by aiokafka's record
    batch builder (C) and handed to its producer whole: faust's own path (`send_changelog`)
    makes a message, a future and a callback of every write, which took as much of the
    worker's event loop as the activation engine itself (docs/performance.md)."""
    producer = table.app.producer._ensure_producer()  # faust's aiokafka producer, started
    topic = table.changelog_topic.get_topic_name()
    by_partition: dict[int, list[Write]] = {}
    for write in writes:
        by_partition.setdefault(write[0], []).append(write)
    sent = []
    for partition, found in sorted(by_partition.items()):
        batch, held = producer.create_batch(), list[Write]()
        for write in found:
            if batch.append(key=write[1], value=write[2], timestamp=None) is None:  # full
                sent.append((held, await producer.send_batch(batch, topic, partition=partition)))
                batch, held = producer.create_batch(), []
                batch.append(key=write[1], value=write[2], timestamp=None)  # a first always fits
            held.append(write)
        sent.append((held, await producer.send_batch(batch, topic, partition=partition)))
    return sent


class ActivationTables:
    """The activation state in faust tables, and the step that applies a batch to it."""

    def __init__(
        self,
        app: faust.App,
        config: ActivationConfig,
        engine: ActivationEngine,
        store: ActivationStore,
        on_emitted: Callable[[str, int], None] | None = None,
    ) -> None:
        """Declare the tables on `app` (before the worker starts)."""
        self._app, self._config, self._engine, self._store = app, config, engine, store
        self._on_emitted = on_emitted
        activations = app.topic(
            config.activations_topic,
            key_type=bytes,
            value_type=bytes,
            partitions=config.partitions,
            compacting=True,  # one record per subject and rule: compaction keeps them all
            acks=False,
            internal=True,
        )
        self._outcomes = app.Table(
            "activation_outcomes",
            key_type=bytes,
            value_type=bytes,
            partitions=config.partitions,
            changelog_topic=activations,
        )
        self._states = app.Table(
            "activation_state", key_type=bytes, value_type=bytes, partitions=config.partitions
        )
        self._state_view, self._decided_view = TableView(self._states), TableView(self._outcomes)

        async def reindex(sender: Any, *args: Any, **kwargs: Any) -> None:
            engine.forget_index()  # partitions (and their restored state) changed

        app.on_partitions_assigned.connect(reindex)  # type: ignore[arg-type]

    async def apply(
        self,
        messages: list[RawMessage],
        deliveries: list[Delivery],
        give_up: Callable[[], None] = lambda: None,
    ) -> None:
        """Apply a written batch (`deliveries` are its messages decoded) and make it durable."""
        if self._app.in_recovery:
            # faust is restoring the tables into the same local store: a write now could be
            # overwritten by an older changelog record. The next batch after the recovery reads
            # these events again from Kafka (see `fill_gaps`).
            log.info("activation: tables in recovery, %d events left for later", len(messages))
            return
        complete = await retry_forever(lambda: self._fill_gaps(messages), _failed, give_up)
        if len(complete) != len(messages):
            places = {(m.partition, m.offset) for m in messages}
            found, _ = decode([m for m in complete if (m.partition, m.offset) not in places])
            deliveries = sorted([*deliveries, *found], key=lambda d: d.place)
        read_through: dict[int, int] = {}
        for m in complete:
            read_through[m.partition] = max(read_through.get(m.partition, -1), m.offset)
        decisions = self._engine.process(
            deliveries, self._state_view, self._decided_view, read_through
        )
        if decisions.outcomes or decisions.starts:
            await retry_forever(
                lambda: asyncio.to_thread(self._store.write, decisions.outcomes, decisions.starts),
                _failed,
                give_up,
            )
        published = [(o.partition, o.key, o.encode()) for o in decisions.outcomes]
        await write_durably(self._outcomes, published, _failed, give_up)
        if self._on_emitted is not None:
            for rule, count in Counter(o.rule for o in decisions.outcomes).items():
                self._on_emitted(rule, count)
        await write_durably(self._states, decisions.states, _failed, give_up)
        await write_durably(self._states, decisions.clocks, _failed, give_up)

    async def _fill_gaps(self, messages: list[RawMessage]) -> list[RawMessage]:
        """Add what the state has not seen between the offset it last applied and this batch.

        A batch left out while the tables recovered, or offsets moved forward by hand, leave a
        hole: the state knows the last offset it applied, so the hole is visible, and the log
        has it. A partition with nothing applied yet begins where the group's offsets begin.
        """
        partitions = {m.partition for m in messages}
        applied = {p: self._engine.applied_through(self._state_view, p) for p in partitions}
        next_unread = {p: through + 1 for p, through in applied.items() if through >= 0}
        complete = await asyncio.to_thread(
            with_missing, self._config.bootstrap, self._config.events_topic, messages, next_unread
        )
        return sorted(complete, key=lambda m: (m.partition, m.offset))


def _failed(exc: Exception, backoff: float) -> None:
    log.warning("activation batch not durable yet, retrying in %.1fs: %r", backoff, exc)
