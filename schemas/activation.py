"""Activation rules (what an "aha moment" is) and what counts as a feature, from the config file."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from schemas.filters import EventName, Filters, Name, PropertyName, filters_match
from schemas.zones import ZoneName

# A rule whose window opens at the subject's first event of any kind, whatever its name.
FIRST_EVENT = "$first_event"
MAX_CONDITIONS = 20

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(d|h|m|s)\s*$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def _duration(value: Any) -> Any:
    """'14d', '36h', '90m', '30s'; anything else goes on to pydantic (ISO 8601, seconds)."""
    if isinstance(value, str) and (match := _DURATION.match(value)):
        return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})
    return value


def _as_text(value: timedelta) -> str:
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[timedelta, BeforeValidator(_duration), PlainSerializer(_as_text)]


class _Matcher(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    event: EventName
    filters: Filters = Field(default_factory=dict)
    times: int = Field(default=1, ge=1, le=10_000)

    def matches(self, event: str, properties: dict[str, Any]) -> bool:
        return event == self.event and filters_match(self.filters, properties)


class Condition(_Matcher):
    """Event E (with property filters) at least `times` times, on at least `distinct_days`
    calendar days, by at least `distinct_users` different users (account rules only)."""

    distinct_days: int = Field(default=1, ge=1, le=366)
    distinct_users: int = Field(default=1, ge=1, le=10_000)


class Step(_Matcher):
    """One step of an ordered sequence: `times` occurrences after the previous step is done."""


class Subject(StrEnum):
    USER = "user"  # a user within an account (events without a groupId: the user alone)
    ACCOUNT = "account"  # the account (groupId), whichever of its users acts


class ActivationRule(BaseModel):
    """Activated when, within `window` of the start, every `all_of` condition holds, at least
    one `any_of` condition holds (if any are given), and the `steps` happened in order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    description: str = ""
    subject: Subject
    # the event that opens the window, or "$first_event": the subject's first event of any kind
    start: EventName = FIRST_EVENT
    window: Duration
    all_of: list[Condition] = Field(default_factory=list)
    any_of: list[Condition] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)

    @field_validator("window")
    @classmethod
    def _window_sane(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(days=366):
            raise ValueError("window must be between 1 minute and 366 days")
        return value

    @model_validator(mode="after")
    def _criteria_sane(self) -> ActivationRule:
        if not (self.all_of or self.any_of or self.steps):
            raise ValueError("give at least one criterion: all_of, any_of or steps")
        if len(self.conditions) > MAX_CONDITIONS:
            raise ValueError(f"at most {MAX_CONDITIONS} conditions and steps per rule")
        days = int(self.window / timedelta(days=1)) + 1  # a window touches at most this many
        for condition in [*self.all_of, *self.any_of]:
            if condition.distinct_users > 1 and self.subject is Subject.USER:
                raise ValueError("distinct_users is for account rules: a user rule has one user")
            if condition.distinct_days > days:
                raise ValueError(
                    f"distinct_days = {condition.distinct_days} can never be met"
                    f" in a window of {_as_text(self.window)}"
                )
        return self

    @property
    def conditions(self) -> list[Condition | Step]:
        """Every condition and step, in a fixed order: bit i of a match mask is entry i."""
        return [*self.all_of, *self.any_of, *self.steps]

    @property
    def starts_at_first_event(self) -> bool:
        return self.start == FIRST_EVENT


class Activation(BaseModel):
    """The `[activation]` section: the rules and how late an event may arrive and still count."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A window is decided missed once the stream's event time passes its end by this much, so
    # events that arrive out of order, up to this late, still count.
    lateness: Duration = timedelta(hours=1)
    # The zone whose calendar days `distinct_days` counts.
    timezone: ZoneName = "UTC"
    rules: list[ActivationRule] = Field(default_factory=list)

    @field_validator("lateness")
    @classmethod
    def _lateness_sane(cls, value: timedelta) -> timedelta:
        if not timedelta(0) <= value <= timedelta(days=30):
            raise ValueError("lateness must be between 0 and 30 days")
        return value

    @model_validator(mode="after")
    def _names_unique(self) -> Activation:
        names = [r.name for r in self.rules]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"rule names must be unique: {', '.join(twice)} defined twice")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def rule(self, name: str) -> ActivationRule | None:
        return next((r for r in self.rules if r.name == name), None)


class Features(BaseModel):
    """The `[features]` section: which track events are feature usage and what they are called."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The feature is this property's value (e.g. "feature"); events without it use their name.
    property: PropertyName | None = None
    # Only these events are feature usage; empty: every track event not excluded.
    events: list[EventName] = Field(default_factory=list)
    exclude_events: list[EventName] = Field(default_factory=list)

    @model_validator(mode="after")
    def _lists_disjoint(self) -> Features:
        both = sorted(set(self.events) & set(self.exclude_events))
        if both:
            raise ValueError(f"listed in both events and exclude_events: {', '.join(both)}")
        return self

    def feature_of(self, event: str, properties: dict[str, Any]) -> str | None:
        """The feature a track event uses, or None when it is not feature usage."""
        if not event or event in self.exclude_events:
            return None
        if self.events and event not in self.events:
            return None
        if self.property is not None:
            value = properties.get(self.property)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                return str(value)[:255]
        return event
