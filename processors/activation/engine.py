"""Activation detection over deliveries: event time per partition and tenant, expiry, verdicts.

Pure and synchronous: it reads state through `StateView`, asks `DecidedView` which subjects
already have their outcome, and returns what to write, without writing anything. The faust agent
(processors.activation.tables) makes those writes durable in a fixed order.

Event time (the watermark) is the largest event time read so far, per partition and tenant:
per tenant so one tenant's late data (an import, a backlog) is judged by its own clock and never
by another tenant's. A window is decided missed when its tenant's event time on the partition
passes the window's end plus the allowed lateness. It moves only with events read from the log,
in offset order, so a replay decides exactly as the first run did. A quiet partition (no event
of that tenant) holds its windows open until the next such event: the stream has no evidence
that time has passed, and wall-clock expiry would make replays disagree.

Each partition's clock record also says through which offset the state has been applied; events
up to it are skipped. After a crash the state restored from its changelog may be ahead of the
committed offsets, and skipping keeps every decision where the uninterrupted run made it.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from processors.activation.records import ACTIVATION, MISSED, Outcome, Start
from processors.activation.remembered_states import RememberedStates
from processors.activation.rules import RuleEvaluator, SubjectState, millis, outcome_id, subject_of
from processors.model import Delivery
from schemas.activation import Activation

WATERMARK = b"watermark:"  # key prefix of the partitions' clocks in the state table


class StateView(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def items(self) -> Iterable[tuple[bytes, bytes]]: ...


class DecidedView(Protocol):
    def __contains__(self, key: object) -> bool: ...


def watermark_key(partition: int) -> bytes:
    return WATERMARK + str(partition).encode()


@dataclass
class PartitionClock:
    """One partition's record: each tenant's event time on it (ms), and the last offset whose
    effects are in the state. One record, so the two are always restored together."""

    through: int = -1
    event_time: dict[str, int] = field(default_factory=dict)

    def encode(self) -> bytes:
        return json.dumps({"through": self.through, "event_time": self.event_time}).encode()

    @classmethod
    def decode(cls, raw: bytes | None) -> PartitionClock:
        if raw is None:
            return cls()
        value = json.loads(raw)
        return cls(int(value["through"]), {t: int(ms) for t, ms in value["event_time"].items()})


@dataclass
class Decisions:
    """What one batch decided, to be made durable in this order: outcomes, then `states`
    (key → new value, None deletes), then `clocks` (each partition's watermark record). A clock
    written only after every state of its batch means a restored clock never claims more than
    the restored state holds."""

    outcomes: list[Outcome] = field(default_factory=list)
    starts: list[Start] = field(default_factory=list)
    states: list[tuple[int, bytes, bytes | None]] = field(default_factory=list)
    clocks: list[tuple[int, bytes, bytes]] = field(default_factory=list)
    skipped: int = 0  # deliveries already applied before a restart


class ExpiryIndex:
    """Undecided subjects by when their windows expire, per (partition, tenant). One live entry
    per subject: moved earlier at once, later lazily when the old time comes due, so the index
    stays as large as the number of subjects, not of events."""

    def __init__(self) -> None:
        self._heaps: dict[tuple[int, str], list[tuple[int, bytes]]] = {}
        self._due: dict[bytes, int] = {}

    def schedule(self, where: tuple[int, str], key: bytes, due: int) -> None:
        if self._due.get(key, due + 1) <= due:
            return
        self._due[key] = due
        heapq.heappush(self._heaps.setdefault(where, []), (due, key))

    def any_due(self, where: tuple[int, str], now: int) -> bool:
        """Whether `due_before` has anything to go through: asked after every event."""
        heap = self._heaps.get(where)
        return heap is not None and len(heap) > 0 and heap[0][0] < now

    def due_before(self, where: tuple[int, str], now: int) -> Iterator[tuple[int, bytes]]:
        heap = self._heaps.get(where)
        while heap and heap[0][0] < now:
            due, key = heapq.heappop(heap)
            if self._due.get(key) == due:  # else superseded by an earlier entry
                del self._due[key]
                yield due, key


class ActivationEngine:
    def __init__(self, activation: Activation) -> None:
        zone = activation.zone
        self._rules = {
            r.name: RuleEvaluator(r, activation.lateness, zone) for r in activation.rules
        }
        self._evaluators = tuple(self._rules.values())
        # per (type, event name): the rules that read such an event (most read few names)
        self._readers: dict[tuple[str, str], tuple[RuleEvaluator, ...]] = {}
        # rebuilt from the state after every rebalance: partitions (and their state) come and go
        self._index: ExpiryIndex | None = None
        self.remembered = RememberedStates()

    def readers(self, kind: str, name: str) -> tuple[RuleEvaluator, ...]:
        found = self._readers.get((kind, name))
        if found is None:
            found = tuple(e for e in self._evaluators if e.reads(kind, name))
            if len(self._readers) < 10_000:  # names come from senders: remember so many
                self._readers[kind, name] = found
        return found

    def forget_index(self) -> None:
        self._index = None
        self.remembered.clear()

    def process(
        self,
        deliveries: Sequence[Delivery],
        states: StateView,
        decided: DecidedView,
        read_through: Mapping[int, int] | None = None,
    ) -> Decisions:
        """Decide on `deliveries`, in order. `read_through`: per partition, the last offset of
        the batch, events or not (a message that is not an event is read all the same)."""
        return _Batch(self, states, decided).run(deliveries, read_through or {})

    @staticmethod
    def applied_through(states: StateView, partition: int) -> int:
        """The last offset of `partition` whose effects the state holds; -1 if none."""
        return PartitionClock.decode(states.get(watermark_key(partition))).through

    def index(self, states: StateView) -> ExpiryIndex:
        if self._index is None:
            self._index = ExpiryIndex()
            for key, raw in states.items():
                if key.startswith(WATERMARK) or raw is None:
                    continue
                state = SubjectState.decode(raw)
                evaluator = self._rules.get(state.rule)
                # a subject of a rule no longer configured waits forever; keep it out
                if evaluator is not None:
                    where = (state.partition, state.tenant)
                    self._index.schedule(where, key, evaluator.expires_at(state))
        return self._index

    def evaluator(self, rule: str) -> RuleEvaluator | None:
        return self._rules.get(rule)


class _Batch:
    """One batch's walk: an overlay of changed states over the store, in delivery order."""

    def __init__(self, engine: ActivationEngine, states: StateView, decided: DecidedView) -> None:
        self.engine = engine
        self.states = states
        self.decided = decided
        self.index = engine.index(states)
        self.overlay: dict[bytes, SubjectState | None] = {}
        # states read from the store, decoded once a batch: a subject's events in a batch
        # (an account's, often dozens) would each decode its whole window of hits again
        self.read: dict[bytes, SubjectState] = {}
        self.partition_of: dict[bytes, int] = {}
        self.decided_now: set[bytes] = set()
        self.clocks: dict[int, PartitionClock] = {}
        self.moved: set[int] = set()  # partitions whose clock this batch advanced
        self.starts: dict[bytes, Start] = {}
        self.out = Decisions()

    def clock(self, partition: int) -> PartitionClock:
        clock = self.clocks.get(partition)
        if clock is None:
            clock = self.clocks[partition] = PartitionClock.decode(
                self.states.get(watermark_key(partition))
            )
        return clock

    def run(self, deliveries: Sequence[Delivery], read_through: Mapping[int, int]) -> Decisions:
        for delivery in deliveries:
            clock = self.clock(delivery.partition)
            if delivery.offset <= clock.through:
                self.out.skipped += 1
                continue
            event = delivery.event
            at = millis(event.timestamp)
            self.apply(delivery, clock, at)
            # an event cannot have happened after it was received: a sender's clock far ahead
            # must not close everyone's windows
            now = min(at, millis(event.received_at))
            time = clock.event_time[event.tenant] = max(clock.event_time.get(event.tenant, 0), now)
            clock.through = delivery.offset
            self.moved.add(delivery.partition)
            self.expire(delivery, time)
        for partition, offset in read_through.items():
            clock = self.clock(partition)
            if offset > clock.through:
                clock.through = offset
                self.moved.add(partition)
        self.out.starts = list(self.starts.values())
        for key, state in self.overlay.items():
            raw = None if state is None else state.encode()
            self.out.states.append((self.partition_of[key], key, raw))
            self.engine.remembered.wrote(key, raw, state)
        self.out.clocks = [
            (p, watermark_key(p), self.clocks[p].encode()) for p in sorted(self.moved)
        ]
        return self.out

    def current(self, key: bytes) -> SubjectState | None:
        """The subject's state as this batch has it. A state is changed only when it then goes
        to the overlay (`put`, `decide`), so a decoded one can be handed out again."""
        if key in self.overlay:
            return self.overlay[key]
        state = self.read.get(key)
        if state is None:
            raw = self.states.get(key)
            if raw is None:
                return None
            state = self.read[key] = self.engine.remembered.read(key, raw)
        return state

    def is_decided(self, key: bytes) -> bool:
        return key in self.decided_now or key in self.decided

    def put(self, key: bytes, partition: int, state: SubjectState | None) -> None:
        self.overlay[key] = state
        self.partition_of[key] = partition

    def apply(self, delivery: Delivery, clock: PartitionClock, at: int) -> None:
        """`at`: the event's time in ms."""
        event = delivery.event
        for evaluator in self.engine.readers(event.type, event.event):
            rule = evaluator.rule
            subject = subject_of(rule, event)
            if subject is None:
                continue
            mask, opens = evaluator.mask(event), evaluator.opens(event)
            if not (mask or opens):
                continue
            key = outcome_id(event.tenant, rule.name, *subject).encode()
            if self.is_decided(key):
                continue
            state = self.current(key) or SubjectState(
                delivery.partition, event.tenant, rule.name, *subject
            )
            started = state.started_at
            floor = clock.event_time.get(event.tenant, 0) - evaluator.window - evaluator.lateness
            if not evaluator.apply(state, event, at, mask, opens, floor):
                # nothing changed, so neither can the verdict (None: the subject is undecided)
                # nor the expiry: a repeat costs no walk over the subject's hits
                continue
            if state.started_at is not None and state.started_at != started:
                self.starts[key] = Start(
                    event.tenant, rule.name, *subject, state.started_at, delivery.partition,
                    delivery.offset,
                )  # fmt: skip
            hit = evaluator.verdict(state)
            if hit is not None and state.started_at is not None:
                self.decide(key, state, evaluator, ACTIVATION, delivery, hit.at, hit.message_id)
                continue
            self.put(key, delivery.partition, state)
            self.index.schedule(
                (delivery.partition, event.tenant), key, evaluator.expires_at(state)
            )

    def expire(self, delivery: Delivery, event_time: int) -> None:
        where = (delivery.partition, delivery.event.tenant)
        if not self.index.any_due(where, event_time):
            return
        for _, key in self.index.due_before(where, event_time):
            state = self.current(key)
            if state is None:
                continue
            if self.is_decided(key):  # decided before a crash left its state behind
                self.put(key, delivery.partition, None)
                continue
            evaluator = self.engine.evaluator(state.rule)
            if evaluator is None:
                continue
            expires_at = evaluator.expires_at(state)
            if expires_at >= event_time:  # it moved later since it was scheduled
                self.index.schedule(where, key, expires_at)
                continue
            if state.started_at is not None:
                # met already (rules made easier since its last change), or missed
                hit = evaluator.verdict(state)
                if hit is not None:
                    self.decide(key, state, evaluator, ACTIVATION, delivery, hit.at, hit.message_id)
                else:
                    self.decide(key, state, evaluator, MISSED, delivery, None, "")
            else:
                self.put(key, delivery.partition, None)  # never opened; nothing can open it now

    def decide(
        self,
        key: bytes,
        state: SubjectState,
        evaluator: RuleEvaluator,
        kind: str,
        delivery: Delivery,
        activated_at: int | None,
        message_id: str,
    ) -> None:
        assert state.started_at is not None
        self.out.outcomes.append(
            Outcome(
                id=key.decode(),
                type=kind,
                tenant=state.tenant,
                rule=state.rule,
                subject=evaluator.rule.subject.value,
                account=state.account,
                user=state.user,
                started_at=state.started_at,
                deadline=state.started_at + evaluator.window,
                activated_at=activated_at,
                message_id=message_id,
                partition=delivery.partition,
                offset=delivery.offset,
            )
        )
        self.decided_now.add(key)
        self.put(key, delivery.partition, None)  # the outcome is the memory from now on
