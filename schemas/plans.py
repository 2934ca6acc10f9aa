"""Plans: what an account's plan includes per meter and billing period, where it alerts, and an
optional tier ladder on a core metric. An account's plan is its `group` call's `plan` trait."""

from __future__ import annotations

from decimal import Decimal
from itertools import pairwise
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.filters import Name

Quantity = Annotated[Decimal, Field(ge=0, max_digits=38, decimal_places=9)]


class Threshold(BaseModel):
    """Alert when a meter's period-to-date quantity reaches `percent` of the plan's included
    quantity, or an absolute `quantity`: exactly one of the two."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    meter: Name
    percent: Annotated[Decimal, Field(gt=0, le=10_000, decimal_places=3)] | None = None
    quantity: Annotated[Decimal, Field(gt=0, max_digits=38, decimal_places=9)] | None = None

    @model_validator(mode="after")
    def _one_of_two(self) -> Threshold:
        if (self.percent is None) == (self.quantity is None):
            raise ValueError("a threshold takes either `percent` or `quantity`")
        return self

    @property
    def key(self) -> str:
        """The threshold's name in records and ids: `80%` or `5000`."""
        if self.percent is not None:
            return f"{self.percent.normalize():f}%"
        assert self.quantity is not None  # one of the two, by the validator
        return f"{self.quantity.normalize():f}"

    def level(self, included: Decimal | None) -> Decimal | None:
        """The quantity at which it fires; None when a percent has no included quantity."""
        if self.quantity is not None:
            return self.quantity
        if included is None or self.percent is None:
            return None
        return included * self.percent / 100


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: Name
    # the tier holds quantities from this one up to the next tier's `from`
    start: Quantity = Field(alias="from")


class Tiers(BaseModel):
    """A ladder on a core metric (HubSpot's marketing contacts: 1,000 / 10,000 / 100,000): the
    account's period-to-date quantity of `meter` places it on one named tier."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    meter: Name
    ladder: list[Tier] = Field(min_length=2, max_length=32)

    @model_validator(mode="after")
    def _ascending_from_zero(self) -> Tiers:
        starts = [t.start for t in self.ladder]
        if starts[0] != 0:
            raise ValueError("the first tier starts `from` 0")
        if any(b <= a for a, b in pairwise(starts)):
            raise ValueError("tiers start at strictly ascending `from` quantities")
        names = [t.name for t in self.ladder]
        if len(set(names)) != len(names):
            raise ValueError("tier names must be unique")
        return self

    def tier(self, quantity: Decimal) -> Tier:
        """The highest tier whose start the quantity has reached (the first for anything
        below it)."""
        reached = [t for t in self.ladder if quantity >= t.start]
        return reached[-1] if reached else self.ladder[0]


class Plan(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    # accounts whose group call names no plan (or a plan not configured) are on this one
    default: bool = False
    # meter name → quantity included per billing period
    included: dict[Name, Quantity] = Field(default_factory=dict)
    thresholds: list[Threshold] = Field(default_factory=list, max_length=64)
    tiers: Tiers | None = None

    @model_validator(mode="after")
    def _thresholds_unique(self) -> Plan:
        keys = [(t.meter, t.key) for t in self.thresholds]
        twice = sorted({f"{m} {k}" for m, k in keys if keys.count((m, k)) > 1})
        if twice:
            raise ValueError(f"a threshold is given twice: {', '.join(twice)}")
        return self


class Alerts(BaseModel):
    """`[alerts]`: how crossings re-arm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # a fired threshold re-arms (a `resolved` record) only once the quantity falls this many
    # percent below it, so usage hovering at a boundary does not flap
    hysteresis_percent: Decimal = Field(default=Decimal(5), ge=0, lt=100)


def plan_problems(plans: list[Plan], meters: set[str]) -> list[str]:
    """What the meters make wrong in the plans, each with its place; every one at once."""
    known = ", ".join(sorted(meters)) or "none"
    problems = []
    names = [p.name for p in plans]
    for twice in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"plans: the plan name {twice!r} is given twice")
    defaults = [p.name for p in plans if p.default]
    if plans and len(defaults) != 1:
        problems.append(
            f"plans: exactly one plan must have `default = true` (found {len(defaults)})"
        )
    for i, plan in enumerate(plans):
        for meter in plan.included:
            if meter not in meters:
                problems.append(f"plans[{i}].included.{meter}: no meter named so (meters: {known})")
        for j, threshold in enumerate(plan.thresholds):
            where = f"plans[{i}].thresholds[{j}]"
            if threshold.meter not in meters:
                problems.append(f"{where}.meter: no meter named {threshold.meter!r} ({known})")
            elif threshold.percent is not None and threshold.meter not in plan.included:
                problems.append(
                    f"{where}.percent: the plan includes no quantity of {threshold.meter!r}"
                    " to take a percent of (add it to `included`, or give `quantity`)"
                )
        if plan.tiers is not None and plan.tiers.meter not in meters:
            problems.append(
                f"plans[{i}].tiers.meter: no meter named {plan.tiers.meter!r} ({known})"
            )
    return problems
