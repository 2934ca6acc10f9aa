"""Meter definitions: which events count toward a billable quantity, and how they aggregate."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.filters import EventName, Filters, Name, PropertyName, filters_match

# unique_count over distinct users instead of a property's values
DISTINCT_USERS = "$user"
# a meter over every track event (e.g. active users)
ANY_EVENT = "*"
MAX_GROUP_BY = 5


class Aggregation(StrEnum):
    COUNT = "count"
    SUM = "sum"
    MIN = "min"
    MAX = "max"
    UNIQUE_COUNT = "unique_count"
    LATEST = "latest"
    AVG = "avg"
    # a reported value (GB stored, instances) held until the next report, times the time held
    TIME_WEIGHTED = "time_weighted"
    # seats added and removed: the number held, times the time held (seat-days)
    SEATS = "seats"


# Aggregations over time held: their quantity is value x time, in `per` units.
HELD = (Aggregation.TIME_WEIGHTED, Aggregation.SEATS)


class Per(StrEnum):
    """The unit of time a held quantity is counted in: GB-hours, seat-days, or fractions of the
    billing period (a seat held the whole month is 1, however many days or hours it has)."""

    SECOND = "second"
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    PERIOD = "period"

    @property
    def seconds(self) -> int | None:
        """The unit's length; None for `period`, whose length is each billing period's own."""
        return {"second": 1, "minute": 60, "hour": 3600, "day": 86400}.get(self.value)


class Meter(BaseModel):
    """One meter. The customer is always the event's account (groupId)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    description: str = ""
    unit: str = Field(default="", max_length=64)
    event: EventName
    filters: Filters = Field(default_factory=dict)
    aggregation: Aggregation
    # the property aggregated (sum, min, max, avg, latest, unique_count, time_weighted), or
    # "$user" for unique_count; for seats, how many seats an event adds or removes (default 1)
    value: PropertyName | None = None
    group_by: list[PropertyName] = Field(default_factory=list, max_length=MAX_GROUP_BY)
    # time_weighted and seats: the unit of time the quantity is counted in
    per: Per | None = None
    # time_weighted: how long a reading holds at most (a gauge whose reporter died stops
    # billing); ISO 8601 ("PT6H") or seconds. None: until the next reading, however late
    expires_after: timedelta | None = None
    # seats: the event that removes seats (`event` adds them)
    removed_event: EventName | None = None

    @model_validator(mode="after")
    def _value_fits_aggregation(self) -> Meter:
        if self.aggregation is Aggregation.COUNT and self.value is not None:
            raise ValueError("a count meter takes no `value`")
        if self.aggregation in HELD and self.per is None:
            raise ValueError(
                f"a {self.aggregation} meter needs `per`: second, minute, hour, day or period"
            )
        if self.aggregation not in HELD and self.per is not None:
            raise ValueError("`per` is only for time_weighted and seats meters")
        if self.expires_after is not None and self.aggregation is not Aggregation.TIME_WEIGHTED:
            raise ValueError("`expires_after` is only for time_weighted meters")
        if self.expires_after is not None and self.expires_after <= timedelta(0):
            raise ValueError("`expires_after` must be positive")
        if (self.aggregation is Aggregation.SEATS) != (self.removed_event is not None):
            raise ValueError("`removed_event` is needed by seats meters, and only by them")
        if self.removed_event is not None and ANY_EVENT in (self.event, self.removed_event):
            raise ValueError("a seats meter names its two events; '*' is not one")
        if self.removed_event is not None and self.removed_event == self.event:
            raise ValueError("`removed_event` must differ from `event`")
        needs_value = self.aggregation not in (Aggregation.COUNT, Aggregation.SEATS)
        if needs_value and self.value is None:
            what = (
                "a property or '$user'"
                if self.aggregation is Aggregation.UNIQUE_COUNT
                else "a property"
            )
            raise ValueError(f"a {self.aggregation} meter needs `value`: {what}")
        if self.value == DISTINCT_USERS and self.aggregation is not Aggregation.UNIQUE_COUNT:
            raise ValueError("'$user' is a value only for unique_count")
        if len(set(self.group_by)) != len(self.group_by):
            raise ValueError("`group_by` names a property twice")
        return self

    @property
    def events(self) -> tuple[str, ...]:
        """The event names the meter reads: one, or a seats meter's two."""
        return (self.event,) if self.removed_event is None else (self.event, self.removed_event)

    def matches(self, event: str, properties: dict[str, Any]) -> bool:
        if event not in self.events and not (self.event == ANY_EVENT and event):
            return False
        return filters_match(self.filters, properties)
