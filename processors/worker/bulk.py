"""Reading `events` a whole fetch at a time, beneath faust.

faust keeps what it is good at: group membership and rebalances, the activation tables with
their changelogs and recovery, its commit timer for everything else. Its per-message path does
not scale: for every message `Consumer._drain_messages` wraps the delivery in mode's
`wait_first` (tasks created and cancelled), the Conductor builds an Event, the Stream acks it
under a lock: ~70 µs an event, whatever the batch size. So the worker's consumer hands each
fetch of `events` to one batch handler, which commits that batch's offsets itself once it is
durable; records of any other topic (the tables' changelogs) take faust's own path.

- A fetch of an older consumer generation than the current one is dropped, not handled: its
  partitions may belong to another worker now, which reads them from the committed offsets.
- A revocation waits for the batch in hand (an awaited `on_partitions_revoked` receiver), and
  asks it to stop retrying: a batch is either written and committed, or abandoned whole
  (`Abandoned`), never half committed while another worker takes over its partitions.
- Batches are handled one at a time, in order, while the next one gathers: a consumer that
  stopped fetching during a write would sit behind the broker's fetch wait (faust sets 1.5 s)
  and let batches grow to their cap. A batch's window counts from when its first record
  reached Kafka.
- Records a fetch returns that cannot be handled now (the flow stopped meanwhile, their
  partition paused) are put back, not dropped: their partition goes back to the first of them
  unless it was sought elsewhere since. A table's changelog has no committed offset to bring
  dropped records back, and its restore would wait for them for ever.
- faust's livelock monitor is fed as its streams would feed it: inbound time and end offsets
  per partition; commits go through faust's own `_commit_offsets`; put-backs run on the
  consumer's thread (`call_thread`), between its fetches.

Verified against faust-streaming 0.15.3, which pyproject.toml pins; tests/unit/processors/worker/
test_bulk.py fails when the upstream methods this module overrides or calls change.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from processors.model import RawMessage

log = logging.getLogger(__name__)


class Abandoned(Exception):
    """The batch in hand gave up: its partitions are being revoked."""


BatchHandler = Callable[[list[RawMessage]], Awaitable[None]]


@dataclass
class BulkRoute:
    """Where fetches of `topic` go, in batches of up to `batch_size` events gathered for at most
    `batch_seconds`, and the lock a revocation waits on."""

    topic: str
    handle: BatchHandler
    batch_size: int = 10_000
    batch_seconds: float = 0.25
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    revoking: bool = False  # set while a revocation waits: retries give up

    def check(self) -> None:
        """Called between retries of the batch in hand."""
        if self.revoking:
            raise Abandoned("partitions are being revoked")


class BulkConsumer(faust_aiokafka.Consumer):
    """faust's aiokafka consumer, with fetches of the app's bulk topic going to its handler."""

    async def _drain_messages(self, fetcher: Any) -> None:
        route: BulkRoute | None = getattr(self.app, "bulk", None)
        if route is None:
            await super()._drain_messages(fetcher)
            return
        consumer_should_stop = self._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        monitor = self.app.monitor
        pending: list[RawMessage] = []
        due = 0.0  # when the pending events must go, however few (wall clock)
        generation = self.app.consumer_generation_id
        # one batch handled while the next one gathers: fetching never waits for a write
        ready: asyncio.Queue[tuple[list[RawMessage], int]] = asyncio.Queue(maxsize=1)
        handler = asyncio.ensure_future(self._handle_each(route, ready))
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                wait = max(0.0, due - time.time()) if pending else 1.0
                records, active = await self._wait_next_records(wait)
                await self.sleep(0)
                if self.should_stop:
                    break
                if generation != self.app.consumer_generation_id:
                    # a rebalance since the pending events were fetched: they belong to the old
                    # assignment and are read again from the committed offsets by whoever holds
                    # their partitions now; this fetch is the new generation's
                    if pending:
                        log.info("dropped %d events fetched before a rebalance", len(pending))
                    pending, generation = [], self.app.consumer_generation_id
                if not self.flow_active:
                    pending = []
                    await self.put_back(records or {})
                    await self.perform_seek()
                    continue
                held = {tp: found for tp, found in (records or {}).items()
                        if active is not None and tp not in active}  # fmt: skip
                await self.put_back(held)
                for tp, found in (records or {}).items():
                    if tp in held:
                        continue
                    if tp.topic != route.topic:
                        for record in found:
                            await self._deliver(tp, record)
                        continue
                    if not pending:
                        due = _arrived(found) + route.batch_seconds
                    pending += [RawMessage(r.partition, r.offset, r.key, r.value) for r in found]
                    monitor.track_tp_end_offset(tp, self.highwater(tp))
                    monitor.stream_inbound_time[tp] = time.monotonic()
                while pending and (len(pending) >= route.batch_size or time.time() >= due):
                    batch, pending = pending[: route.batch_size], pending[route.batch_size :]
                    if handler.done():
                        handler.result()  # the handler died: raise what killed it
                    await ready.put((batch, generation))
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                log.info("broker stopped the consumer while shutting down")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            handler.cancel()  # a batch in hand is abandoned: its offsets are not committed

    async def _handle_each(
        self, route: BulkRoute, ready: asyncio.Queue[tuple[list[RawMessage], int]]
    ) -> None:
        while True:
            batch, generation = await ready.get()
            try:
                await self._handle(route, batch, generation)
            except Exception as exc:  # a bug, not bad data: stop the worker rather than skip
                log.exception("the batch handler failed")
                await self.crash(exc)
                raise

    async def _handle(self, route: BulkRoute, batch: list[RawMessage], generation: int) -> None:
        async with route.lock:
            if generation != self.app.consumer_generation_id or route.revoking:
                log.info("dropped a fetch of %d events from an older generation", len(batch))
                return
            try:
                await route.handle(batch)
            except Abandoned:
                log.warning("abandoned a batch of %d events: partitions revoked", len(batch))

    async def put_back(self, records: Mapping[Any, list[Any]]) -> None:
        """Records fetched that cannot be handled now (the flow stopped, their partition paused
        meanwhile) are read again: each partition goes back to its first such record. Dropping
        them would lose them for good where no committed offset brings them back, as with a
        table's changelog while it is being restored (faust seeks it, then resumes the flow)."""
        places = {tp: (found[0].offset, found[-1].offset + 1) for tp, found in records.items()
                  if found}  # fmt: skip
        if places:
            thread = self._thread
            await thread.call_thread(rewind, thread._ensure_consumer(), places)

    async def _deliver(self, tp: Any, record: Any) -> None:
        """One record of another topic (a table's changelog), the way faust delivers it."""
        message = self._to_message(tp, record)
        await self.wait_first(self.callback(message), self.suspend_flow.wait())
        self._read_offset[tp] = record.offset

    async def commit_marks(self, topic: str, marks: Mapping[int, int]) -> bool:
        """Commit, for each partition of `topic`, the offset after the last durable one."""
        offsets = {self._new_topicpartition(topic, p): offset for p, offset in marks.items()}
        committed: bool = await self._commit_offsets(offsets)
        return committed


async def rewind(consumer: Any, places: Mapping[Any, tuple[int, int]]) -> None:
    """On the consumer's own thread, move each partition back to `first` of its (first, after)
    if it still stands at `after`, where the records handed over left it: a partition seeking
    elsewhere since (a table's restore, a new assignment) keeps that position."""
    subscription = consumer._subscription.subscription
    assignment = subscription.assignment if subscription is not None else None
    for tp, (first, after) in places.items():
        state = assignment.state_value(tp) if assignment is not None else None
        if state is not None and state.has_valid_position and state.position == after:
            consumer.seek(tp, first)


def _arrived(records: list[Any]) -> float:
    """When the oldest of `records` reached Kafka (its timestamp), or now if that is later or
    unknown: records that waited in the fetcher while the previous batch was written have used
    up part of their batch window already."""
    stamps = [r.timestamp for r in records if r.timestamp and r.timestamp > 0]
    return min(time.time(), min(stamps) / 1000) if stamps else time.time()


class BulkTransport(faust_aiokafka.Transport):
    Consumer = BulkConsumer


class WorkerApp(faust.App):
    """A faust app whose consumer reads its bulk topic a fetch at a time (see the module)."""

    bulk: BulkRoute | None = None

    def _new_transport(self) -> Any:
        return BulkTransport(self.conf.broker_consumer, self)

    def route_bulk(
        self, topic: str, handle: BatchHandler, batch_size: int, batch_seconds: float
    ) -> BulkRoute:
        """Send every fetch of `topic` to `handle`, in batches; subscribe to it."""
        route = self.bulk = BulkRoute(topic, handle, batch_size, batch_seconds)
        self.topics.add(self.topic(topic, key_type=bytes, value_type=bytes, internal=False))

        async def revoked(sender: Any, *args: Any, **kwargs: Any) -> None:
            route.revoking = True
            try:
                async with route.lock:  # the batch in hand finishes or gives up first
                    pass
            finally:
                route.revoking = False

        self.on_partitions_revoked.connect(revoked)  # type: ignore[arg-type]
        return route

    async def commit_bulk(self, marks: Mapping[int, int]) -> bool:
        """Commit the bulk topic's offsets once what comes before `marks` is durable."""
        consumer = self.consumer
        assert self.bulk is not None and isinstance(consumer, BulkConsumer)
        return await consumer.commit_marks(self.bulk.topic, marks)
