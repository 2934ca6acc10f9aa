"""Threshold crossings: every threshold a batch passes fires, in order, once until it re-arms;
hysteresis keeps a quantity hovering at a boundary from flapping; a plan change re-evaluates."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.alerts import Kind, Place, State, evaluate
from schemas.plans import Plan, Threshold, Tiers

PLACE = Place("acme", "acct-1", "api_calls", "2026-12")
FIVE = Decimal(5)


def plan(included: int = 1000, percents: tuple[int, ...] = (80, 100), name: str = "team") -> Plan:
    return Plan(
        name=name,
        included={"api_calls": Decimal(included)},
        thresholds=[Threshold(meter="api_calls", percent=Decimal(p)) for p in percents],
    )


def walk(p: Plan, quantities: list[int]) -> list[tuple[int, str, str]]:
    state, out = State(), []
    for q in quantities:
        state, records = evaluate(PLACE, p, state, Decimal(q), FIVE)
        out += [(q, r.kind.value, r.threshold or r.tier_entered) for r in records]
    return out


def test_a_jump_past_two_thresholds_fires_both_in_ascending_order_each_naming_the_other() -> None:
    state, records = evaluate(PLACE, plan(), State(), Decimal(500), FIVE)
    assert records == []
    state, records = evaluate(PLACE, plan(), state, Decimal(1200), FIVE)
    assert [(r.kind, r.threshold, r.level) for r in records] == [
        (Kind.FIRED, "80%", Decimal(800)),
        (Kind.FIRED, "100%", Decimal(1000)),
    ]
    assert [r.with_others for r in records] == [("100%",), ("80%",)]
    assert all(r.quantity == 1200 and r.included == 1000 and r.plan == "team" for r in records)


def test_hovering_at_a_boundary_fires_once_and_re_arms_only_past_the_hysteresis() -> None:
    # 800 fires; 790 and 761 are within 5% of it; 759 is below 760: resolved; 800 again fires
    assert walk(plan(percents=(80,)), [799, 800, 790, 801, 761, 759, 780, 800]) == [
        (800, "fired", "80%"),
        (759, "resolved", "80%"),
        (800, "fired", "80%"),
    ]


def test_a_fire_after_a_re_arm_has_a_new_id_and_a_replay_the_same_ids() -> None:
    def ids() -> list[str]:
        state, out = State(), []
        for q in (900, 700, 900):
            state, records = evaluate(PLACE, plan(percents=(80,)), state, Decimal(q), FIVE)
            out += [r.id for r in records]
        return out

    first = ids()
    assert len(set(first)) == 3  # fired, resolved, fired again
    assert ids() == first


def test_a_higher_quota_re_arms_without_firing_and_a_lower_one_fires_at_once() -> None:
    state, records = evaluate(PLACE, plan(1000), State(), Decimal(850), FIVE)
    assert [r.threshold for r in records] == ["80%"]
    # upgraded to 2000 included: 80% is now 1600, far above 850: re-armed, not fired
    state, records = evaluate(PLACE, plan(2000, name="pro"), state, Decimal(850), FIVE)
    assert [(r.kind, r.threshold, r.plan) for r in records] == [(Kind.RESOLVED, "80%", "pro")]
    state, records = evaluate(PLACE, plan(2000, name="pro"), state, Decimal(1600), FIVE)
    assert [(r.kind, r.level) for r in records] == [(Kind.FIRED, Decimal(1600))]
    # downgraded to 500: 100% is 500, below 1600: fires at once; 80% stays fired, not again
    state, records = evaluate(PLACE, plan(500, name="free"), state, Decimal(1600), FIVE)
    assert [(r.kind, r.threshold) for r in records] == [(Kind.FIRED, "100%")]


def test_an_absolute_threshold_needs_no_included_quantity() -> None:
    p = Plan(name="free", thresholds=[Threshold(meter="api_calls", quantity=Decimal(50))])
    assert walk(p, [10, 60]) == [(60, "fired", "50")]


def test_other_meters_thresholds_are_not_this_ones() -> None:
    p = Plan(name="free", thresholds=[Threshold(meter="seat_days", quantity=Decimal(5))])
    assert walk(p, [10, 60]) == []


def test_tier_changes_either_way_each_its_own_record() -> None:
    p = Plan(
        name="marketing",
        tiers=Tiers.model_validate(
            {"meter": "api_calls", "ladder": [{"name": "starter", "from": 0},
                {"name": "professional", "from": 1000}, {"name": "enterprise", "from": 10000}]}
        ),
    )  # fmt: skip
    state, out = State(), []
    for q in (10, 1000, 20000, 5000):
        state, records = evaluate(PLACE, p, state, Decimal(q), FIVE)
        out += [(r.tier_left, r.tier_entered) for r in records]
    assert out == [
        ("starter", "professional"),
        ("professional", "enterprise"),
        ("enterprise", "professional"),
    ]


quantities = st.lists(st.integers(min_value=0, max_value=3000), min_size=1, max_size=40)
percent_sets = st.lists(
    st.integers(min_value=1, max_value=250), min_size=1, max_size=5, unique=True
)


@settings(max_examples=300, deadline=None)
@given(quantities, percent_sets, st.integers(min_value=0, max_value=30))
def test_records_follow_the_quantity_exactly(
    steps: list[int], percents: list[int], hysteresis: int
) -> None:
    """Read back from the records alone: at every step a threshold fires iff it was armed and
    the quantity reached its level, resolves iff it had fired and the quantity fell below the
    hysteresis band; fires of a step ascend and name each other; every id is unique."""
    p = plan(1000, tuple(percents))
    level = {f"{pc}%": Decimal(1000) * pc / 100 for pc in percents}
    keep = 1 - Decimal(hysteresis) / 100
    fired_now = dict.fromkeys(level, False)
    state, ids = State(), []
    for q in steps:
        state, records = evaluate(PLACE, p, state, Decimal(q), Decimal(hysteresis))
        fires = [r for r in records if r.kind is Kind.FIRED]
        resolves = {r.threshold for r in records if r.kind is Kind.RESOLVED}
        for key, at in level.items():
            should_fire = not fired_now[key] and q >= at
            should_resolve = fired_now[key] and q < at * keep
            assert (key in {r.threshold for r in fires}) == should_fire
            assert (key in resolves) == should_resolve
            fired_now[key] = (fired_now[key] and not should_resolve) or should_fire
        assert [r.level for r in fires] == sorted(r.level for r in fires)
        for r in fires:
            assert set(r.with_others) == {f.threshold for f in fires} - {r.threshold}
        ids += [r.id for r in records]
    assert len(ids) == len(set(ids))
