"""Threshold crossings of one (tenant, account, meter, billing period): pure, no I/O.

Given what a batch moved the period-to-date quantity from and to, and the plan in force, says
which thresholds fire, which resolve and whether the tier changed. Each outcome has an id made
of what it is about, so a batch replayed after a crash yields the same ids: the topic and the
table the records go to keep one of each.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum

from schemas.plans import Plan

# ids of crossing records are names in this namespace
ID_NAMESPACE = uuid.UUID("0b7f0c55-5d1e-4a52-9f0e-3d6b1f2c8a41")


class Kind(StrEnum):
    FIRED = "fired"
    RESOLVED = "resolved"
    TIER_CHANGED = "tier_changed"


@dataclass(frozen=True)
class Place:
    """What a crossing is about: one meter of one account in one billing period."""

    tenant: str
    account: str
    meter: str
    period: str  # YYYY-MM in the billing zone


@dataclass(frozen=True)
class Crossing:
    id: str
    kind: Kind
    place: Place
    quantity: Decimal  # the period-to-date quantity after the batch
    plan: str
    threshold: str = ""  # `80%` or `5000`; empty for a tier change
    generation: int = 0  # the threshold's re-arms before it (a tier change: the changes before)
    level: Decimal | None = None  # the quantity the threshold stands at under this plan
    included: Decimal | None = None
    # fired: the other thresholds the same batch fired, ascending
    with_others: tuple[str, ...] = ()
    tier_left: str = ""
    tier_entered: str = ""


@dataclass(frozen=True)
class Armed:
    """One threshold's state: fired or armed, and how many times it re-armed (part of ids)."""

    fired: bool = False
    generation: int = 0


@dataclass(frozen=True)
class State:
    """Everything remembered of one place between batches."""

    thresholds: dict[str, Armed] = field(default_factory=dict)
    tier: str = ""
    tier_changes: int = 0


def crossing_id(place: Place, what: str, generation: int, kind: Kind) -> str:
    name = "\x1f".join(
        (place.tenant, place.account, place.meter, place.period, what, str(generation), kind)
    )
    return str(uuid.uuid5(ID_NAMESPACE, name))


def evaluate(
    place: Place, plan: Plan, state: State, quantity: Decimal, hysteresis_percent: Decimal
) -> tuple[State, list[Crossing]]:
    """The state after the quantity became `quantity`, and the records that says, in order:
    resolves, then fires in ascending level, then the tier change.

    A threshold fires when armed and the quantity has reached its level; it re-arms (resolves)
    only once the quantity falls below level * (1 - hysteresis). Evaluated against the plan in
    force, so a plan change re-evaluates at once: a lower level fires an armed threshold, a
    higher one may resolve a fired one, and nothing fired fires again without re-arming."""
    included = plan.included.get(place.meter)
    levels = sorted(
        (
            (level, t.key)
            for t in plan.thresholds
            if t.meter == place.meter and (level := t.level(included)) is not None
        ),
        key=lambda pair: pair[0],
    )
    keep = 1 - hysteresis_percent / 100
    armed = dict(state.thresholds)
    resolved, fired = [], []
    for level, key in levels:
        now = armed.get(key, Armed())
        if now.fired and quantity < level * keep:
            armed[key] = Armed(fired=False, generation=now.generation + 1)
            resolved.append((level, key, now.generation))
        elif not now.fired and quantity >= level:
            armed[key] = replace(now, fired=True)
            fired.append((level, key, now.generation))

    def record(kind: Kind, level: Decimal, key: str, generation: int) -> Crossing:
        return Crossing(
            id=crossing_id(place, key, generation, kind), kind=kind, place=place,
            quantity=quantity, plan=plan.name, threshold=key, generation=generation,
            level=level, included=included,
            with_others=tuple(k for _, k, _ in fired if k != key) if kind is Kind.FIRED else (),
        )  # fmt: skip

    out = [record(Kind.RESOLVED, *r) for r in resolved] + [record(Kind.FIRED, *f) for f in fired]
    tier, changes = state.tier, state.tier_changes
    if plan.tiers is not None and plan.tiers.meter == place.meter:
        tier = tier or plan.tiers.ladder[0].name  # a period starts at 0: on the first tier
        entered = plan.tiers.tier(quantity).name
        if entered != tier:
            out.append(
                Crossing(
                    id=crossing_id(place, "tier", changes, Kind.TIER_CHANGED),
                    kind=Kind.TIER_CHANGED,
                    place=place,
                    quantity=quantity,
                    plan=plan.name,
                    generation=changes,
                    tier_left=tier,
                    tier_entered=entered,
                )
            )
            changes += 1
        tier = entered
    return State(armed, tier, changes), out
