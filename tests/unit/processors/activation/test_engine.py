"""Activation detection on in-memory tables: verdicts, windows, order, dedup, crashes anywhere."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.activation import rules
from processors.activation.engine import ActivationEngine, Decisions
from processors.activation.records import ACTIVATION, MISSED, Outcome
from processors.activation.remembered_states import RememberedStates
from processors.activation.rules import (
    Hit,
    RuleEvaluator,
    SubjectState,
    millis,
    outcome_id,
)
from processors.model import Delivery, Event
from schemas import EnrichedEvent
from schemas.activation import Activation

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def config(**rule: Any) -> Activation:
    criteria = [{"event": "report_created", "times": 3}, {"event": "teammate_invited"}]
    base = {"name": "aha", "subject": "user", "start": "signed_up", "window": "7d",
            "all_of": criteria}  # fmt: skip
    return Activation.model_validate({"lateness": "1h", "rules": [{**base, **rule}]})


def event(
    name: str, when: datetime, user: str = "u1", account: str = "acct-1", **kw: Any
) -> EnrichedEvent:
    return EnrichedEvent(
        tenant=kw.pop("tenant", "acme"), type=kw.pop("type", "track"),
        message_id=kw.pop("message_id", None) or str(uuid.uuid4()),
        event=name, account=account, user_id=user, properties=kw.pop("properties", {}),
        timestamp=when, received_at=kw.pop("received_at", when + timedelta(seconds=1)),
    )  # fmt: skip


@dataclass
class Tables:
    """The agent's two tables and the `activations` topic, without Kafka."""

    states: dict[bytes, bytes] = field(default_factory=dict)
    outcomes: dict[bytes, bytes] = field(default_factory=dict)
    topic: list[Outcome] = field(default_factory=list)

    def apply(self, decisions: Decisions) -> None:
        for outcome in decisions.outcomes:
            assert outcome.key not in self.outcomes, "decided twice"
            self.outcomes[outcome.key] = outcome.encode()
            self.topic.append(outcome)
        for _, key, value in [*decisions.states, *decisions.clocks]:
            if value is None:
                self.states.pop(key, None)
            else:
                self.states[key] = value


class StatesView:
    def __init__(self, states: dict[bytes, bytes]) -> None:
        self._states = states

    def get(self, key: bytes) -> bytes | None:
        return self._states.get(key)

    def items(self) -> list[tuple[bytes, bytes]]:
        return list(self._states.items())


class Run:
    def __init__(self, activation: Activation) -> None:
        self.engine = ActivationEngine(activation)
        self.tables = Tables()
        self.offsets: dict[int, int] = {}

    def send(self, *events: EnrichedEvent, partition: int = 0) -> Decisions:
        deliveries = []
        for e in events:
            offset = self.offsets.get(partition, 0)
            self.offsets[partition] = offset + 1
            deliveries.append(Delivery(e, partition, offset))
        return self.feed(deliveries)

    def feed(self, deliveries: Sequence[Delivery]) -> Decisions:
        decisions = self.engine.process(
            deliveries, StatesView(self.tables.states), self.tables.outcomes
        )
        self.tables.apply(decisions)
        return decisions

    @property
    def outcomes(self) -> list[Outcome]:
        return self.tables.topic


def later(days: float = 0, hours: float = 0) -> datetime:
    return T0 + timedelta(days=days, hours=hours)


def test_the_qualifying_event_on_day_3_activates_once_with_its_time_to_value() -> None:
    run = Run(config())
    run.send(event("signed_up", T0), event("report_created", later(1)),
             event("report_created", later(2)), event("report_created", later(2, 5)))  # fmt: skip
    assert run.outcomes == []
    qualifying = event("teammate_invited", later(3, 1))
    run.send(qualifying)
    [outcome] = run.outcomes
    assert outcome.type == ACTIVATION and outcome.message_id == qualifying.message_id
    assert outcome.activated_at == millis(later(3, 1))
    assert outcome.time_to_value_ms == (later(3, 1) - T0) // timedelta(milliseconds=1)
    assert outcome.id == outcome_id("acme", "aha", "acct-1", "u1")
    run.send(event("teammate_invited", later(4)), event("report_created", later(4)))
    assert len(run.outcomes) == 1  # once per subject and rule
    assert run.tables.states.keys() == {b"watermark:0"}  # nothing left to remember but the mark


def test_missed_only_when_event_time_passes_the_window_end_plus_lateness() -> None:
    run = Run(config())
    run.send(event("signed_up", T0), event("report_created", later(1)))
    run.send(event("dashboard_viewed", later(7, 0.5), user="other"))  # inside the lateness
    assert run.outcomes == []
    run.send(event("dashboard_viewed", later(7, 1.01), user="other"))
    [missed] = run.outcomes
    assert (missed.type, missed.user, missed.activated_at) == (MISSED, "u1", None)
    assert missed.deadline == millis(later(7))
    run.send(event("report_created", later(3)), event("teammate_invited", later(3)))
    assert len(run.outcomes) == 1  # decided: late evidence changes nothing


def test_a_late_event_within_the_lateness_still_counts() -> None:
    run = Run(config())
    run.send(event("signed_up", T0), *[event("report_created", later(1)) for _ in range(3)])
    run.send(event("dashboard_viewed", later(7, 0.9), user="other"))  # event time near the end
    run.send(event("teammate_invited", later(6)))  # arrives late, happened inside the window
    [outcome] = run.outcomes
    assert outcome.type == ACTIVATION and outcome.activated_at == millis(later(6))


def test_out_of_order_events_count_where_they_happened() -> None:
    events = [event("signed_up", T0), event("report_created", later(1)),
              event("report_created", later(2)), event("teammate_invited", later(2, 1)),
              event("report_created", later(3)), event("report_created", later(5))]  # fmt: skip
    in_order = Run(config())
    in_order.send(*events)
    [outcome] = in_order.outcomes
    assert outcome.activated_at == millis(later(3))  # the third report completes the criteria
    for seed in range(20):  # any order in which the signup comes last: all evidence is there
        shuffled = events[1:]
        random.Random(seed).shuffle(shuffled)
        run = Run(config())
        for e in [*shuffled, events[0]]:  # one at a time: a verdict is sought at every step
            run.send(e)
        assert _same(run.outcomes, in_order.outcomes)


def test_a_verdict_is_final_even_if_earlier_evidence_arrives_after_it() -> None:
    """Detection is real time: the outcome goes out when the criteria hold on what has been
    read; an event that happened earlier but arrives later does not move activated_at."""
    run = Run(config())
    run.send(event("signed_up", T0), *[event("report_created", later(d)) for d in (1, 2, 5)])
    run.send(event("teammate_invited", later(2, 1)))
    run.send(event("report_created", later(3)))
    [outcome] = run.outcomes
    assert outcome.activated_at == millis(later(5))


def _same(a: list[Outcome], b: list[Outcome]) -> bool:
    def strip(o: Outcome) -> tuple[Any, ...]:
        return (o.id, o.type, o.started_at, o.activated_at, o.message_id)

    return [strip(o) for o in a] == [strip(o) for o in b]


def test_events_before_the_start_arrives_count_and_outside_the_window_do_not() -> None:
    run = Run(config())
    run.send(event("report_created", later(-1)))  # before the signup: outside the window
    run.send(
        *[event("report_created", later(d)) for d in (1, 2)],
        event("teammate_invited", later(7, 0.5)),
    )
    run.send(event("signed_up", T0))
    assert run.outcomes == []  # 2 reports inside, the invite after the window's end
    run.send(event("report_created", later(6)))
    assert run.outcomes == []  # the invite is still outside
    run.send(event("teammate_invited", later(6, 2)))
    [outcome] = run.outcomes
    assert outcome.activated_at == millis(later(6, 2))


def test_copies_of_an_event_count_once() -> None:
    run = Run(config())
    report = event("report_created", later(1))
    run.send(event("signed_up", T0), report, report, report, event("teammate_invited", later(2)))
    run.send(event("report_created", later(2), message_id=report.message_id))
    assert run.outcomes == []


def test_account_rule_needs_distinct_users() -> None:
    run = Run(config(subject="account", all_of=[{"event": "report_created", "distinct_users": 3}]))
    run.send(event("signed_up", T0, user="a"))
    run.send(*[event("report_created", later(1, h), user="a") for h in range(5)])
    run.send(event("report_created", later(2), user="b"))
    assert run.outcomes == []
    run.send(event("report_created", later(2, 3), user="c"))
    [outcome] = run.outcomes
    assert (outcome.subject, outcome.account, outcome.user) == ("account", "acct-1", "")
    assert outcome.activated_at == millis(later(2, 3))


def test_distinct_days_steps_and_any_of() -> None:
    rule = {
        "all_of": [{"event": "dashboard_viewed", "times": 3, "distinct_days": 2}],
        "any_of": [{"event": "export_csv"}, {"event": "api_call", "filters": {"status": 200}}],
        "steps": [{"event": "report_created"}, {"event": "teammate_invited", "times": 2}],
    }
    run = Run(config(**rule))
    run.send(event("signed_up", T0), *[event("dashboard_viewed", later(1, h)) for h in range(3)])
    run.send(event("teammate_invited", later(1)))  # before the report: does not count as step 2
    run.send(event("report_created", later(2)), event("teammate_invited", later(2, 1)))
    run.send(event("api_call", later(2, 2), properties={"status": 500}))
    run.send(event("dashboard_viewed", later(3)))  # a second day
    run.send(event("teammate_invited", later(3, 1)))
    assert run.outcomes == []  # no any_of yet
    run.send(event("api_call", later(3, 2), properties={"status": 200}))
    [outcome] = run.outcomes
    assert outcome.activated_at == millis(later(3, 2))


def test_first_event_starts_the_window_even_when_it_arrives_late() -> None:
    run = Run(config(start="$first_event", window="2d", all_of=[{"event": "report_created"}]))
    run.send(event("dashboard_viewed", later(3)))
    run.send(event("report_created", later(4, 12)))  # 1.5 days after the first event
    [outcome] = run.outcomes
    assert outcome.started_at == millis(later(3))
    run2 = Run(config(start="$first_event", window="2d", all_of=[{"event": "report_created"}]))
    run2.send(event("report_created", later(4, 12)))
    assert len(run2.outcomes) == 1  # the report is itself the first event


def test_subjects_that_never_start_are_forgotten() -> None:
    run = Run(config())
    run.send(*[event("report_created", later(0, h), user=f"u{h}") for h in range(50)])
    assert len(run.tables.states) == 51
    run.send(event("dashboard_viewed", later(10), user="x"))  # window + lateness after all
    assert run.tables.states.keys() == {b"watermark:0"}
    assert run.outcomes == []


def test_a_sender_clock_far_ahead_does_not_close_windows() -> None:
    run = Run(config())
    run.send(event("signed_up", T0))
    run.send(event("dashboard_viewed", later(30), user="x", received_at=later(0, 1)))
    assert run.outcomes == []  # event time is capped by when the event was received


def test_partitions_keep_their_own_event_time() -> None:
    run = Run(config())
    run.send(event("signed_up", T0), partition=0)
    run.send(event("dashboard_viewed", later(30), user="x", account="b"), partition=1)
    assert run.outcomes == []
    run.send(event("dashboard_viewed", later(30), user="y"), partition=0)
    assert [o.type for o in run.outcomes] == [MISSED]


def test_the_mark_covers_messages_that_are_not_events() -> None:
    run = Run(config())
    run.send(event("signed_up", T0))
    assert run.engine.applied_through(StatesView(run.tables.states), 0) == 0
    run.tables.apply(run.engine.process([], StatesView(run.tables.states), {}, {0: 7, 3: 2}))
    states = StatesView(run.tables.states)
    assert (run.engine.applied_through(states, 0), run.engine.applied_through(states, 3)) == (7, 2)
    assert run.engine.applied_through(states, 1) == -1
    replay = run.engine.process([Delivery(event("report_created", later(1)), 0, 5)], states, {})
    assert replay.skipped == 1  # at or below the mark: applied already


def test_each_tenant_keeps_its_own_event_time() -> None:
    run = Run(config())
    run.send(event("signed_up", T0, tenant="globex"))
    run.send(event("dashboard_viewed", later(30), user="x"))  # acme is a month ahead
    assert run.outcomes == []
    run.send(event("dashboard_viewed", later(7, 1.5), user="y", tenant="globex"))
    [missed] = run.outcomes
    assert (missed.tenant, missed.type) == ("globex", MISSED)


# -- crashes: whatever a SIGKILL leaves behind, the outcomes are those of an uninterrupted run --

RULES = Activation.model_validate({"lateness": "2h", "rules": [
    {"name": "user_aha", "subject": "user", "start": "signed_up", "window": "3d",
     "all_of": [{"event": "report_created", "times": 2}, {"event": "teammate_invited"}]},
    {"name": "team_aha", "subject": "account", "start": "signed_up", "window": "4d",
     "all_of": [{"event": "report_created", "distinct_users": 2}]},
    {"name": "habit", "subject": "user", "start": "$first_event", "window": "2d",
     "steps": [{"event": "dashboard_viewed"}, {"event": "report_created"}]},
]})  # fmt: skip


def random_stream(rng: random.Random, n: int) -> list[Delivery]:
    """Out of order within hours, copies re-sent later, several accounts on 2 partitions."""
    events, deliveries = [], []
    names = ["signed_up", "report_created", "report_created", "teammate_invited",
             "dashboard_viewed"]  # fmt: skip
    for i in range(n):
        when = T0 + timedelta(hours=i * 0.4 + rng.uniform(-5, 5))
        account = f"acct-{rng.randint(0, 5)}"
        events.append(event(rng.choice(names), when, user=f"{account}-u{rng.randint(0, 2)}",
                            account=account, tenant=rng.choice(["acme", "globex"])))  # fmt: skip
        if rng.random() < 0.1:
            events.append(rng.choice(events))  # a copy, at a later offset
    offsets = {0: 0, 1: 0}
    for e in events:
        partition = int(e.account[-1]) % 2
        deliveries.append(Delivery(e, partition, offsets[partition]))
        offsets[partition] += 1
    return deliveries


def batches(rng: random.Random, deliveries: list[Delivery]) -> list[list[Delivery]]:
    out, i = [], 0
    while i < len(deliveries):
        size = rng.randint(1, 25)
        out.append(deliveries[i : i + size])
        i += size
    return out


def crash_run(rng: random.Random, deliveries: list[Delivery], forget: bool = True) -> list[Outcome]:
    """Batches made durable in the agent's order; crashes at random points lose the memory,
    keep a random part of the writes in flight, and replay from the last committed offset.
    `forget=False`: the same engine goes on, as after a batch abandoned part-way through its
    writes on a revocation: the worker's engine is told its partitions changed, no more."""
    durable = Tables()  # what Kafka holds: the changelogs and the topic
    engine = ActivationEngine(RULES)
    committed = 0  # index into `deliveries` of the first event faust has not committed
    position = 0
    while position < len(deliveries):
        for batch in batches(rng, deliveries[position:]):
            decisions = engine.process(batch, StatesView(durable.states), durable.outcomes)
            if rng.random() < 0.15:  # SIGKILL while this batch is being written
                stage = rng.randrange(3)  # which round of writes was in flight
                kept = Decisions()
                kept.outcomes = _part(rng, decisions.outcomes, stage == 0)
                kept.states = _part(rng, decisions.states, stage == 1) if stage >= 1 else []
                kept.clocks = _part(rng, decisions.clocks, stage == 2) if stage >= 2 else []
                durable.apply(kept)
                if forget:
                    engine = ActivationEngine(RULES)  # memory is gone
                else:
                    engine.forget_index()
                position = committed
                break
            durable.apply(decisions)
            position += len(batch)
            if rng.random() < 0.5:  # faust commits now and then, after the acks
                committed = position
        else:
            break
    return durable.topic


def _part(rng: random.Random, writes: list[Any], in_flight: bool) -> list[Any]:
    """All of a round that was acked; any part of the round in flight (Kafka may hold any)."""
    return rng.sample(writes, rng.randint(0, len(writes))) if in_flight else writes


@pytest.mark.parametrize("forget", [True, False], ids=["restarted", "abandoned"])
@pytest.mark.parametrize("seed", range(12))
def test_crashes_anywhere_give_the_outcomes_of_an_uninterrupted_run(
    seed: int, forget: bool
) -> None:
    rng = random.Random(seed)
    deliveries = random_stream(rng, 300)
    straight = Tables()
    engine = ActivationEngine(RULES)
    for batch in batches(rng, deliveries):
        straight.apply(engine.process(batch, StatesView(straight.states), straight.outcomes))
    assert len(straight.topic) > 10  # the stream decides something: the test can fail
    crashed = crash_run(rng, deliveries, forget)
    assert sorted(crashed, key=lambda o: o.id) == sorted(straight.topic, key=lambda o: o.id)


def test_a_state_is_decoded_again_unless_the_store_holds_the_value_it_was_written_as() -> None:
    remembered = RememberedStates()
    state = SubjectState(0, "t", "aha", "a", "u", 5, {"m1": Hit(7, "m1", "u", 1)})
    written = state.encode()
    remembered.wrote(state.key, written, state)
    copy = remembered.read(state.key, written)
    assert copy == state and copy is not state
    copy.add_hit(Hit(9, "m2", "u", 1))  # a batch changing what it was handed
    assert remembered.read(state.key, written) == state
    older = SubjectState(0, "t", "aha", "a", "u", 5).encode()  # the write was lost, say
    assert remembered.read(state.key, older) == SubjectState.decode(older) != state


def test_the_states_remembered_weigh_at_most_their_limit_the_oldest_going_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = (
        SubjectState(0, "t", "aha", "a", user, 5, {f"m{i}": Hit(i, f"m{i}", user, 1) for i in "12"})
        for user in "ab"
    )
    remembered = RememberedStates(limit=RememberedStates.weight(a) + RememberedStates.weight(b) - 1)
    remembered.wrote(a.key, a.encode(), a)
    remembered.wrote(b.key, b.encode(), b)  # one more than the limit: a goes
    decodes: list[bytes] = []
    decode = SubjectState.decode.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(
        SubjectState,
        "decode",
        classmethod(lambda cls, raw: decodes.append(raw) or decode(cls, raw)),
    )
    assert remembered.read(b.key, b.encode()) == b and decodes == []
    assert remembered.read(a.key, a.encode()) == a and decodes == [a.encode()]


def test_an_event_that_changes_nothing_costs_no_walk_over_the_hits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from processors.activation.rules import RuleEvaluator

    walks: list[int] = []
    verdict = RuleEvaluator.verdict
    monkeypatch.setattr(
        RuleEvaluator, "verdict", lambda self, state: walks.append(1) or verdict(self, state)
    )
    run = Run(config())
    reports = [event("report_created", later(0, h)) for h in range(1, 3)]
    run.send(event("signed_up", T0), *reports)
    before = len(walks)
    run.send(*reports, event("signed_up", later(1)))  # redeliveries, and a later start
    assert len(walks) == before
    assert run.outcomes == []


def test_a_subject_that_meets_rules_made_easier_is_activated_at_expiry_not_missed() -> None:
    hard = Run(config(all_of=[{"event": "report_created", "times": 3}]))
    hard.send(event("signed_up", T0), event("report_created", later(1)))
    easy = Run(config(all_of=[{"event": "report_created", "times": 1}]))
    easy.tables = hard.tables  # the same state, the rule changed by a restart
    easy.offsets = hard.offsets
    easy.send(event("page_viewed", later(8, 2)))  # event time passes the window and lateness
    [outcome] = easy.outcomes
    assert outcome.type == ACTIVATION and outcome.activated_at == millis(later(1))


@pytest.mark.parametrize("seed", range(6))
def test_outcomes_do_not_depend_on_how_the_stream_is_cut_into_batches(seed: int) -> None:
    deliveries = random_stream(random.Random(seed), 300)

    def decided(cut: list[list[Delivery]]) -> list[Outcome]:
        tables, engine = Tables(), ActivationEngine(RULES)
        for batch in cut:
            tables.apply(engine.process(batch, StatesView(tables.states), tables.outcomes))
        return sorted(tables.topic, key=lambda o: o.id)

    one_by_one = decided([[d] for d in deliveries])
    assert len(one_by_one) > 10  # the stream decides something: the test can fail
    assert decided([deliveries]) == one_by_one


def test_a_batch_decodes_a_stored_state_once_however_many_of_its_events_it_holds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from processors.activation.rules import SubjectState

    run = Run(config())
    report = event("report_created", later(0, 2))
    run.send(event("signed_up", T0), report)  # the state is stored between batches
    restarted = ActivationEngine(config())
    restarted.index(StatesView(run.tables.states))  # as after an assignment, before a batch
    decodes: list[bytes] = []
    decode = SubjectState.decode.__func__  # type: ignore[attr-defined]

    def counted(cls: type[SubjectState], raw: bytes) -> SubjectState:
        decodes.append(raw)
        return decode(cls, raw)  # type: ignore[no-any-return]

    monkeypatch.setattr(SubjectState, "decode", classmethod(counted))
    run.send(*[report] * 5)  # copies: each reads the state, none changes it
    assert decodes == []  # the engine remembers the state it wrote
    run.engine = restarted
    run.send(*[report] * 5)
    assert len(decodes) == 1
    assert run.outcomes == []


def _apply_walking_every_hit(
    evaluator: Any, state: SubjectState, event: EnrichedEvent, at: int, mask: int, opens: bool,
    floor: int,
) -> None:  # fmt: skip
    """The fold as the rules define it: after every change, every hit is walked and kept only
    if no window can still use it."""
    changed = False
    if opens and (state.started_at is None or at < state.started_at):
        state.started_at, changed = at, True
    if mask and event.message_id not in state.hits:
        state.hits[event.message_id] = Hit(at, event.message_id, event.user_id, mask)
        changed = True
    if changed:
        deadline = evaluator.deadline(state)
        keep = [h for h in state.hits.values()
                if h.at >= floor and (deadline is None or h.at <= deadline)]  # fmt: skip
        if len(keep) > rules.MAX_HITS:
            keep = sorted(keep, key=lambda h: (h.at, h.message_id))[-rules.MAX_HITS :]
        state.hits = {h.message_id: h for h in keep}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.integers(0, 500), st.integers(0, 3), st.booleans(), st.integers(-50, 400)),
        max_size=60,
    ),
    max_hits=st.sampled_from([3, 5000]),
)
def test_hits_are_kept_as_a_walk_over_all_of_them_keeps_them(
    steps: list[tuple[int, int, bool, int]], max_hits: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rules, "MAX_HITS", max_hits)
    evaluator = RuleEvaluator(config().rules[0], timedelta(0), UTC)  # type: ignore[arg-type]
    fast, walked = SubjectState(0, "t", "aha", "a", "u"), SubjectState(0, "t", "aha", "a", "u")
    for i, (minutes, mask, opens, floor) in enumerate(steps):
        at = minutes * 60_000
        e = event("x", T0, message_id=f"m{i % 40}")
        evaluator.apply(fast, e, at, mask, opens, floor * 60_000)
        _apply_walking_every_hit(evaluator, walked, e, at, mask, opens, floor * 60_000)
        assert fast.hits == walked.hits and fast.started_at == walked.started_at
        latest = max((h.at for h in walked.hits.values()), default=0)
        opened = walked.started_at
        assert evaluator.expires_at(fast) == evaluator.window + evaluator.lateness + (
            latest if opened is None else opened
        )
        assert SubjectState.decode(fast.encode()) == fast


@given(
    kind=st.sampled_from(["track", "identify", "group"]),
    name=st.sampled_from(["signed_up", "report_created", "dashboard_viewed", "export_csv", "x"]),
    rule=st.sampled_from(RULES.rules),
)
def test_a_rule_skipped_for_an_event_name_would_have_found_nothing_in_it(
    kind: str, name: str, rule: Any
) -> None:
    evaluator = RuleEvaluator(rule, timedelta(0), UTC)
    e = Event.of(event(name, T0, type=kind, properties={"n": 1}))
    if not evaluator.reads(kind, name):
        assert evaluator.mask(e) == 0 and not evaluator.opens(e)


def test_a_state_encoded_again_reads_back_as_it_is_whatever_changed_since() -> None:
    state = SubjectState(0, "t", "aha", "a", "u", None)
    state.add_hit(Hit(5, "m1", "u", 1))
    state.encode()
    state.add_hit(Hit(9, "m2", "u", 2))
    assert SubjectState.decode(state.encode()) == state  # the hits written before, and one more
    state.add_hit(Hit(7, "m1", "u", 3))  # a hit replaced
    assert SubjectState.decode(state.encode()) == state
    state.keep_hits([Hit(9, "m2", "u", 2)])
    assert SubjectState.decode(state.encode()) == state
