"""What meters and activation rules share: names, property filters, and how a filter matches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
EventName = Annotated[str, Field(min_length=1, max_length=255)]
PropertyName = Annotated[str, Field(min_length=1, max_length=255)]
FilterValue = str | int | float | bool
# property → required value, or list of accepted values; all must match
Filters = dict[PropertyName, FilterValue | list[FilterValue]]


def same(actual: Any, wanted: FilterValue) -> bool:
    """JSON equality that keeps true apart from 1 (Python would not)."""
    if isinstance(actual, bool) or isinstance(wanted, bool):
        return actual is wanted
    return bool(actual == wanted)


def filters_match(
    filters: Mapping[str, FilterValue | list[FilterValue]], properties: dict[str, Any]
) -> bool:
    """Every filtered property is present with one of its accepted values."""
    for name, wanted in filters.items():
        accepted = wanted if isinstance(wanted, list) else [wanted]
        if name not in properties or not any(same(properties[name], a) for a in accepted):
            return False
    return True
