"""One subject's progress toward one activation rule: its window, its matching events, its verdict.

The state is a function of the *set* of events applied: hits are keyed by messageId and the start
is a minimum, so an event applied twice (a redelivery, an SDK retry) or in another order gives the
same state. The verdict is where the criteria first hold in event time, not in arrival order, so
out-of-order events inside the window count and move activated_at to where it really happened.
"""

from __future__ import annotations

import itertools
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import orjson

from processors.model import Event
from schemas.activation import ActivationRule, Condition, Step, Subject
from schemas.filters import filters_match

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_IDS = uuid.UUID("6f1b0c8e-7d4a-4c55-9a3e-0d6a7f1f2b10")  # namespace of outcome ids
MAX_HITS = 5000  # per subject and rule; beyond it the oldest hits are forgotten


_MS = timedelta(milliseconds=1)


def millis(moment: datetime) -> int:
    """Milliseconds since the epoch, exactly (no float rounding)."""
    return (moment - EPOCH) // _MS


def moment(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


def iso(ms: int) -> str:
    return moment(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@lru_cache(maxsize=1 << 17)  # asked for every event and rule; subjects repeat
def outcome_id(tenant: str, rule: str, account: str, user: str) -> str:
    """Deterministic: the same subject and rule always give the same id, so a repeat of an
    outcome anywhere (topic, ClickHouse, a consumer's store) is recognisable as one."""
    return uuid.uuid5(_IDS, "\x1f".join((tenant, rule, account, user))).hex


def subject_of(rule: ActivationRule, event: Event) -> tuple[str, str] | None:
    """(account, user) of the subject the event belongs to under `rule`, or None."""
    if rule.subject is Subject.ACCOUNT:
        return (event.account, "") if event.account else None
    user = event.user_id or event.anonymous_id
    return (event.account, user) if user else None


@dataclass(frozen=True)
class Hit:
    at: int  # event time, ms since the epoch
    message_id: str
    user: str
    mask: int  # bit i set: the event matches rule.conditions[i]


@dataclass
class SubjectState:
    partition: int
    tenant: str
    rule: str
    account: str
    user: str
    started_at: int | None = None
    hits: dict[str, Hit] = field(default_factory=dict)
    # (earliest, latest) hit time, kept beside `hits` so a new hit needs no walk over them all;
    # None: not known (hits just read or replaced), worked out when asked
    _span: tuple[int, int] | None = field(default=None, compare=False, repr=False)
    # (n, JSON of the first n hits): hits are only ever added at the end until `keep_hits`
    # replaces them, so encoding a state again writes only the hits added since
    _written: tuple[int, bytes] | None = field(default=None, compare=False, repr=False)

    def span(self) -> tuple[int, int] | None:
        """(earliest, latest) event time of the hits; None without hits."""
        if not self.hits:
            return None
        if self._span is None:
            times = [h.at for h in self.hits.values()]
            self._span = (min(times), max(times))
        return self._span

    def add_hit(self, hit: Hit) -> None:
        if self._span is not None:
            self._span = (min(self._span[0], hit.at), max(self._span[1], hit.at))
        if hit.message_id in self.hits:  # replaced in place: what was written no longer holds
            self._span = self._written = None
        self.hits[hit.message_id] = hit

    def keep_hits(self, kept: list[Hit]) -> None:
        self.hits, self._span, self._written = {h.message_id: h for h in kept}, None, None

    def copy(self) -> SubjectState:
        """An equal state to change without changing this one (hits are immutable)."""
        twin = SubjectState(self.partition, self.tenant, self.rule, self.account, self.user,
                            self.started_at, dict(self.hits))  # fmt: skip
        twin._span, twin._written = self._span, self._written
        return twin

    @property
    def key(self) -> bytes:
        return outcome_id(self.tenant, self.rule, self.account, self.user).encode()

    def encode(self) -> bytes:
        """[partition, tenant, rule, account, user, started_at, [[at, id, user, mask], …]],
        as orjson writes it (~5x json's speed): the hits written before are reused."""
        head = [self.partition, self.tenant, self.rule, self.account, self.user, self.started_at]
        done, written = self._written or (0, b"")
        try:
            added = [
                orjson.dumps([h.at, h.message_id, h.user, h.mask])
                for h in itertools.islice(self.hits.values(), done, None)
            ]
            front = orjson.dumps(head)
        except (orjson.JSONEncodeError, TypeError):  # a lone surrogate: json escapes it
            hits = [[h.at, h.message_id, h.user, h.mask] for h in self.hits.values()]
            return json.dumps([*head, hits], separators=(",", ":")).encode()
        written = b",".join([written, *added]) if done else b",".join(added)
        self._written = (len(self.hits), written)
        return front[:-1] + b",[" + written + b"]]"

    @classmethod
    def decode(cls, raw: bytes) -> SubjectState:
        try:
            found = orjson.loads(raw)
        except orjson.JSONDecodeError:  # what json wrote for a lone surrogate
            found = json.loads(raw)
        partition, tenant, rule, account, user, started_at, hits = found
        state = cls(partition, tenant, rule, account, user, started_at)
        state.hits = {h[1]: Hit(h[0], h[1], h[2], h[3]) for h in hits}
        return state


class Tally:
    """Counters of one walk through the window's hits in event-time order."""

    def __init__(self, rule: ActivationRule, zone: ZoneInfo) -> None:
        self._zone = zone
        self._conditions: list[Condition] = [*rule.all_of, *rule.any_of]
        self._all = range(len(rule.all_of))
        self._any = range(len(rule.all_of), len(self._conditions))
        self._steps = rule.steps
        self._first_step = len(self._conditions)
        self._count = [0] * len(self._conditions)
        self._days: list[set[date]] = [set() for _ in self._conditions]
        self._users: list[set[str]] = [set() for _ in self._conditions]
        self._step = 0  # the next step to complete
        self._step_count = 0

    def add(self, hit: Hit) -> None:
        for i, condition in enumerate(self._conditions):
            if hit.mask >> i & 1:
                self._count[i] += 1
                if condition.distinct_days > 1:
                    self._days[i].add(moment(hit.at).astimezone(self._zone).date())
                if condition.distinct_users > 1:
                    self._users[i].add(hit.user)
        # greedy: the earliest occurrence of each step after the previous one finishes first
        if self._step < len(self._steps) and hit.mask >> (self._first_step + self._step) & 1:
            self._step_count += 1
            if self._step_count >= self._steps[self._step].times:
                self._step, self._step_count = self._step + 1, 0

    def _met(self, i: int) -> bool:
        c = self._conditions[i]
        return (
            self._count[i] >= c.times
            and (c.distinct_days <= 1 or len(self._days[i]) >= c.distinct_days)
            and (c.distinct_users <= 1 or len(self._users[i]) >= c.distinct_users)
        )

    def done(self) -> bool:
        return (
            all(self._met(i) for i in self._all)
            and (not self._any or any(self._met(i) for i in self._any))
            and self._step == len(self._steps)
        )


class RuleEvaluator:
    """Applies events to subjects of one rule and judges them; all times in ms."""

    def __init__(self, rule: ActivationRule, lateness: timedelta, zone: ZoneInfo) -> None:
        self.rule = rule
        self.window = rule.window // timedelta(milliseconds=1)
        self.lateness = lateness // timedelta(milliseconds=1)
        self._zone = zone
        # asked of every event: each event name's conditions with their bits, looked up once
        self._bits: dict[str, list[tuple[int, Condition | Step]]] = {}
        for i, condition in enumerate(rule.conditions):
            self._bits.setdefault(condition.event, []).append((1 << i, condition))
        self._first_event = rule.starts_at_first_event

    def reads(self, kind: str, name: str) -> bool:
        """Whether an event of this type and name can be a hit or open a window: if not,
        `mask` is 0 and `opens` False for it, whatever its properties."""
        if self._first_event:
            return True
        return kind == "track" and (name in self._bits or name == self.rule.start)

    def mask(self, event: Event) -> int:
        if event.type != "track":
            return 0
        bits = 0
        for bit, condition in self._bits.get(event.event, ()):
            if filters_match(condition.filters, event.properties):
                bits |= bit
        return bits

    def opens(self, event: Event) -> bool:
        if self._first_event:
            return True
        return event.type == "track" and event.event == self.rule.start

    def apply(
        self, state: SubjectState, event: Event, at: int, mask: int, opens: bool, floor: int
    ) -> bool:
        """Fold one event in; False when it changed nothing (a hit already held, a later start).
        `floor`: hits older than this can no longer fall in any window whose start arrives
        within the allowed lateness, so they are forgotten, when the state changes anyway."""
        changed = False
        if opens and (state.started_at is None or at < state.started_at):
            state.started_at = at
            changed = True
        if mask and event.message_id not in state.hits:
            state.add_hit(Hit(at, event.message_id, event.user_id or event.anonymous_id, mask))
            changed = True
        if not changed:
            return False
        deadline = self.deadline(state)
        span = state.span()
        if span is None or (
            span[0] >= floor
            and (deadline is None or span[1] <= deadline)
            and len(state.hits) <= MAX_HITS
        ):
            return True  # every hit stays: no walk over them
        keep = [
            h
            for h in state.hits.values()
            if h.at >= floor and (deadline is None or h.at <= deadline)
        ]
        if len(keep) > MAX_HITS:
            keep = sorted(keep, key=lambda h: (h.at, h.message_id))[-MAX_HITS:]
        if len(keep) != len(state.hits):
            state.keep_hits(keep)
        return True

    def deadline(self, state: SubjectState) -> int | None:
        return None if state.started_at is None else state.started_at + self.window

    def expires_at(self, state: SubjectState) -> int:
        """When the partition's event time passing this decides the subject: missed if its
        window is open, forgotten if it never opened (no start can still reach its hits)."""
        deadline = self.deadline(state)
        if deadline is not None:
            return deadline + self.lateness
        span = state.span()
        return (span[1] if span else 0) + self.window + self.lateness

    def verdict(self, state: SubjectState) -> Hit | None:
        """The hit at which the criteria first hold inside the window, in event-time order."""
        deadline = self.deadline(state)
        if deadline is None or state.started_at is None:
            return None
        inside = [h for h in state.hits.values() if state.started_at <= h.at <= deadline]
        tally = Tally(self.rule, self._zone)
        for hit in sorted(inside, key=lambda h: (h.at, h.message_id)):
            tally.add(hit)
            if tally.done():
                return hit
        return None
