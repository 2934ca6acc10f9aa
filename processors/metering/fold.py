"""Metered quantities: events folded into per-minute partial rows, one fold for every path.

The stream processor, the backfill and the reconciliation all call `fold`, so a recomputation
from the raw events is the same arithmetic as the live numbers, not a second opinion.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from processors.metering.calendar import FinalAt
from processors.model import Delivery, Event
from processors.windows import EPOCH, to_minute
from schemas.config import ProductConfig
from schemas.enriched import CLAMPED, FLAG_KEY
from schemas.filters import filters_match
from schemas.meters import ANY_EVENT, DISTINCT_USERS, Aggregation, Meter

SCALE = Decimal("0.000000001")  # Decimal(38, 9)
LIMIT = Decimal(10) ** 29
TABLE = "meter_minutes"
COLUMNS = (
    "tenant", "meter", "customer", "groups", "minute", "adjustment", "events", "skipped",
    "value_sum", "value_min", "value_max", "uniq_values", "latest_value", "latest_at", "latest_id",
    "points", "points_received", "clamped", "kafka_partition", "kafka_next_offset",
)  # fmt: skip
ONE = Decimal(1).quantize(SCALE)  # a seat, when the event does not say how many


def numeric(value: Any) -> Decimal | None:
    """A JSON number (or numeric string) as Decimal(38, 9); None for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    if isinstance(value, str) and len(value) > REMEMBERED_TEXT:
        return _decimal(value)
    # a float equal to an int may still read differently (2**60 as a float is 1.152921504606847e18)
    return _remembered(value, type(value) is float)


def _decimal(value: int | float | str) -> Decimal | None:
    try:
        number = Decimal(str(value)).quantize(SCALE)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() and abs(number) < LIMIT else None


# Property values repeat (durations, sizes, counts): each is converted once. Long texts are not
# kept, so the memory stays small whatever events hold.
REMEMBERED_TEXT = 48


@lru_cache(maxsize=1 << 16)
def _remembered(value: int | float | str, is_float: bool) -> Decimal | None:
    return _decimal(value)


def _group_value(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


@dataclass
class Partial:
    """One row of meter_minutes while it is being folded."""

    events: int = 0
    skipped: int = 0
    clamped: int = 0  # stored at receipt: their time was too far in the future
    value_sum: Decimal = Decimal(0)
    value_min: Decimal | None = None
    value_max: Decimal | None = None
    uniq: set[str] = field(default_factory=set)
    latest: tuple[datetime, str, Decimal] | None = None
    # time_weighted: each report (at, id, value, received); seats: each change (at, id, ±seats,
    # received)
    points: list[tuple[datetime, str, Decimal, datetime]] = field(default_factory=list)

    def add(self, meter: Meter, event: Event) -> None:
        flags = event.context.get(FLAG_KEY)
        if flags and isinstance(flags, dict) and CLAMPED in flags:
            self.clamped += 1
        if meter.aggregation is Aggregation.COUNT:
            self.events += 1
            return
        if meter.aggregation is Aggregation.SEATS:
            self._add_seats(meter, event)
            return
        if meter.aggregation is Aggregation.UNIQUE_COUNT:
            if meter.value == DISTINCT_USERS:
                raw = event.user_id or event.anonymous_id
            else:
                raw = _group_value(event.properties.get(meter.value or ""))
            if not raw:
                self.skipped += 1
            else:
                self.events += 1
                self.uniq.add(raw)
            return
        number = numeric(event.properties.get(meter.value or ""))
        if number is None:
            self.skipped += 1
            return
        self.events += 1
        self.value_sum += number
        if self.value_min is None or number < self.value_min:
            self.value_min = number
        if self.value_max is None or number > self.value_max:
            self.value_max = number
        at, latest = event.timestamp, self.latest
        # the latest by (time, id), compared without building tuples: asked for every value
        if latest is None or at > latest[0] or (at == latest[0] and event.message_id > latest[1]):
            self.latest = (at, event.message_id, number)
        if meter.aggregation is Aggregation.TIME_WEIGHTED:
            self.points.append((at, event.message_id, number, event.received_at))

    def _add_seats(self, meter: Meter, event: Event) -> None:
        number = numeric(event.properties.get(meter.value)) if meter.value else ONE
        if number is None:
            self.skipped += 1
            return
        change = -number if event.event == meter.removed_event else number
        self.events += 1
        self.value_sum += change
        self.points.append((event.timestamp, event.message_id, change, event.received_at))


Groups = tuple[tuple[str, str], ...]  # (property, value) of each of the meter's group_by
# (tenant, meter, customer, groups, minute, adjustment, partition)
Key = tuple[str, str, str, Groups, datetime, int, int]


def fold(config: ProductConfig, events: Iterable[Event], partition: int = 0) -> dict[Key, Partial]:
    """Every matching (event, meter) into its per-minute partial row. `partition` goes into
    every key: the live processor folds each Kafka partition apart, since its rows carry that
    partition's mark; a recomputation from stored events has no partition (0)."""
    # Rows by (tenant, customer, minute, adjustment), then by (meter, groups): an event's place
    # is worked out once, not once per meter it matches.
    cells: dict[tuple[str, str, datetime, int], dict[tuple[str, Groups], Partial]] = {}
    final = FinalAt(config.billing)
    meters_of = _meters_by_event(config.meters)
    anything = meters_of[ANY_EVENT]
    stamp: datetime | None = None
    for event in events:
        if event.type != "track" or not event.event:
            continue
        candidates = meters_of.get(event.event) or anything
        cell = None
        for meter in candidates:
            if meter.filters and not filters_match(meter.filters, event.properties):
                continue
            if cell is None:
                if event.timestamp != stamp:  # a batch's events often share their time
                    stamp = event.timestamp
                    minute, ends = to_minute(stamp), final(stamp)
                place = (event.tenant, event.account, minute, int(event.received_at >= ends))
                cell = cells.get(place)
                if cell is None:
                    cell = cells[place] = {}
            groups = (
                tuple((g, _group_value(event.properties.get(g))) for g in meter.group_by)
                if meter.group_by
                else ()
            )
            partial = cell.get((meter.name, groups))
            if partial is None:
                partial = cell[meter.name, groups] = Partial()
            partial.add(meter, event)
    return {
        (tenant, meter, customer, groups, minute, late, partition): partial
        for (tenant, customer, minute, late), cell in cells.items()
        for (meter, groups), partial in cell.items()
    }


def _meters_by_event(meters: Sequence[Meter]) -> dict[str, list[Meter]]:
    """The meters each event name can match, those of every event (`*`) included, in their
    order; under `*`, the meters of every event alone."""
    anything = [m for m in meters if m.event == ANY_EVENT]
    named: dict[str, list[Meter]] = {}
    for meter in meters:
        for name in meter.events:
            if name != ANY_EVENT:
                named.setdefault(name, [])
    for name, found in named.items():
        found += [m for m in meters if name in m.events or m.event == ANY_EVENT]
    return {**named, ANY_EVENT: anything}


def fold_deliveries(config: ProductConfig, deliveries: Sequence[Delivery]) -> dict[Key, Partial]:
    """`fold` of each Kafka partition's events in the batch."""
    by_partition: dict[int, list[Event]] = {}
    for d in deliveries:
        by_partition.setdefault(d.partition, []).append(d.event)
    partials: dict[Key, Partial] = {}
    for partition, events in by_partition.items():
        partials |= fold(config, events, partition)
    return partials


def to_rows(partials: dict[Key, Partial], next_offset: dict[int, int]) -> list[list[Any]]:
    rows = []
    for (tenant, meter, customer, groups, minute, late, partition), p in partials.items():
        latest_at, latest_id, latest_value = p.latest or (EPOCH, "", None)
        points = sorted(p.points)
        rows.append([
            tenant, meter, customer, dict(groups), minute, late, p.events, p.skipped,
            p.value_sum, p.value_min, p.value_max, sorted(p.uniq), latest_value, latest_at,
            latest_id, [point[:3] for point in points], [point[3] for point in points],
            p.clamped, partition, next_offset.get(partition, 0),
        ])  # fmt: skip
    return rows
