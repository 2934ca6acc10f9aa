"""The activation agent: a second faust agent on `events`, its state in two faust tables.

Why a second agent on `events` rather than a processor in `run_batch`: processors run in a
worker thread, and a faust table may only change from the agent's event loop. The agent needs
no dedup of its own: a subject's state is a function of the set of its events (hits keyed by
messageId), so an SDK retry or a redelivery applied twice changes nothing.

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
   (faust can ack, and commit, messages an agent never saw: see `fill_gaps`);
1. ClickHouse: the outcomes (idempotent by id) and the window starts;
2. the outcomes into `activation_outcomes`, i.e. onto the `activations` topic, acked;
3. the subjects' states, acked; 4. the partitions' clocks, acked;
5. only then the events are acked, so faust commits no offset whose effects are not durable.
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
from processors.delivery.gaps import with_missing
from processors.delivery.retry import retry_forever
from processors.model import RawMessage, decode

log = logging.getLogger(__name__)
SEND_TIMEOUT = 60.0  # seconds to wait for the broker to ack one round of table writes

Write = tuple[int, bytes, bytes | None]  # (partition, key, value); None deletes the key


@dataclass(frozen=True)
class ActivationAgentConfig:
    bootstrap: str
    events_topic: str
    activations_topic: str
    partitions: int  # of `events`; the tables' changelogs (and `activations`) have as many
    batch_size: int = 2000
    batch_seconds: float = 0.25


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
    table: Any, writes: Sequence[Write], on_failure: Callable[[Exception, float], None]
) -> None:
    """Set each key locally and send it to the table's changelog with an explicit partition
    (the source event's: a batch mixes partitions, so faust's current event cannot pick it);
    resend what the broker did not ack until everything is acked."""
    pending = list(writes)
    if not pending:
        return

    async def attempt() -> None:
        nonlocal pending
        futures = []
        for partition, key, value in pending:
            if value is None:
                table.data.pop(key, None)
                futures.append(table.send_changelog(partition, key, None, value_serializer="raw"))
            else:
                table.data[key] = value
                futures.append(table.send_changelog(partition, key, value))
        done, _ = await asyncio.wait(futures, timeout=SEND_TIMEOUT)
        failed: list[tuple[Write, BaseException]] = []
        for write, future in zip(pending, futures, strict=True):
            if future not in done:
                failed.append((write, TimeoutError(f"no ack within {SEND_TIMEOUT:g}s")))
            elif (error := future.exception()) is not None:
                failed.append((write, error))
        pending = [write for write, _ in failed]
        if failed:
            error = failed[0][1]
            raise error if isinstance(error, Exception) else RuntimeError(repr(error))

    await retry_forever(attempt, on_failure)


def install_activation_agent(
    app: faust.App,
    config: ActivationAgentConfig,
    engine: ActivationEngine,
    store: ActivationStore,
    on_emitted: Callable[[str, int], None] | None = None,
) -> None:
    """Declare the tables and the agent on `app` (before the worker starts)."""
    events = app.topic(config.events_topic, key_type=bytes, value_type=bytes, internal=False)
    activations = app.topic(
        config.activations_topic,
        key_type=bytes,
        value_type=bytes,
        partitions=config.partitions,
        compacting=True,  # one record per subject and rule: compaction keeps them all
        acks=False,
        internal=True,
    )
    outcomes = app.Table(
        "activation_outcomes",
        key_type=bytes,
        value_type=bytes,
        partitions=config.partitions,
        changelog_topic=activations,
    )
    states = app.Table(
        "activation_state", key_type=bytes, value_type=bytes, partitions=config.partitions
    )
    state_view, decided_view = TableView(states), TableView(outcomes)

    def failed(exc: Exception, backoff: float) -> None:
        log.warning("activation batch not durable yet, retrying in %.1fs: %r", backoff, exc)

    async def fill_gaps(messages: list[RawMessage]) -> list[RawMessage]:
        """Add what faust did not hand over between what the state holds and this batch.

        faust can ack (and so commit) a message an agent never saw: around a rebalance it acks
        the messages of the old generation it drops, and two agents share each message's ack.
        The state knows the last offset it applied, so a hole is visible, and the log has it.
        A partition with nothing applied yet begins where the group's offsets begin.
        """
        partitions = {m.partition for m in messages}
        applied = {p: engine.applied_through(state_view, p) for p in partitions}
        next_unread = {p: through + 1 for p, through in applied.items() if through >= 0}
        complete = await asyncio.to_thread(
            with_missing, config.bootstrap, config.events_topic, messages, next_unread
        )
        return sorted(complete, key=lambda m: (m.partition, m.offset))

    async def make_durable(batch: list[RawMessage]) -> None:
        messages = await retry_forever(lambda: fill_gaps(batch), failed)
        deliveries, _ = decode(messages)  # the sink dead-letters what is not an event
        read_through: dict[int, int] = {}
        for m in messages:
            read_through[m.partition] = max(read_through.get(m.partition, -1), m.offset)
        decisions = engine.process(deliveries, state_view, decided_view, read_through)
        if decisions.outcomes or decisions.starts:
            await retry_forever(
                lambda: asyncio.to_thread(store.write, decisions.outcomes, decisions.starts),
                failed,
            )
        published = [(o.partition, o.key, o.encode()) for o in decisions.outcomes]
        await write_durably(outcomes, published, failed)
        if on_emitted is not None:
            for rule, count in Counter(o.rule for o in decisions.outcomes).items():
                on_emitted(rule, count)
        await write_durably(states, decisions.states, failed)
        await write_durably(states, decisions.clocks, failed)

    @app.agent(events, name="activation")
    async def activation(stream: Any) -> None:
        async for batch in stream.noack_take(config.batch_size, within=config.batch_seconds):
            if app.in_recovery:
                # faust is restoring the tables into the same local store: a write now could be
                # overwritten by an older changelog record. Leave the batch unacked (and
                # unreferenced): it is read again after the recovery, or filled in from Kafka.
                log.info("activation: tables in recovery, %d events left for later", len(batch))
                del batch
                continue
            messages = [
                RawMessage(e.message.partition, e.message.offset, e.message.key, e.message.value)
                for e in batch
            ]
            await make_durable(messages)
            for event in batch:
                await stream.ack(event)

    async def reindex(sender: Any, *args: Any, **kwargs: Any) -> None:
        engine.forget_index()  # partitions (and their restored state) changed

    app.on_partitions_assigned.connect(reindex)  # type: ignore[arg-type]
