"""Meter definitions: which events count toward a billable quantity, and how they aggregate."""

from __future__ import annotations

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


class Meter(BaseModel):
    """One meter. The customer is always the event's account (groupId)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    description: str = ""
    unit: str = Field(default="", max_length=64)
    event: EventName
    filters: Filters = Field(default_factory=dict)
    aggregation: Aggregation
    # the property aggregated (sum, min, max, latest, unique_count), or "$user" for unique_count
    value: PropertyName | None = None
    group_by: list[PropertyName] = Field(default_factory=list, max_length=MAX_GROUP_BY)

    @model_validator(mode="after")
    def _value_fits_aggregation(self) -> Meter:
        if self.aggregation is Aggregation.COUNT and self.value is not None:
            raise ValueError("a count meter takes no `value`")
        if self.aggregation is not Aggregation.COUNT and self.value is None:
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

    def matches(self, event: str, properties: dict[str, Any]) -> bool:
        if event != self.event and not (self.event == ANY_EVENT and event):
            return False
        return filters_match(self.filters, properties)
