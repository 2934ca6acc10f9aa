"""Period-to-date quantities of an account's meter, kept from the metering fold's partial rows.

The invoiced view only (`quantity`, not `adjusted_quantity`): rows of events received after
their period became final are not added, so a final period never moves. Pure: no I/O; the
watch loads the stored rows into it and adds each batch's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from processors.metering.fold import SCALE, Partial
from processors.metering.held_fold import Report, held_quantities
from schemas.meters import Aggregation, Meter

ZERO = Decimal(0)
Groups = tuple[tuple[str, str], ...]


@dataclass
class Tally:
    """What aggregates without time held: count, sum, min, max, avg, unique_count, latest."""

    events: int = 0
    total: Decimal = ZERO
    low: Decimal | None = None
    high: Decimal | None = None
    uniq: set[str] = field(default_factory=set)
    latest: tuple[datetime, str, Decimal] | None = None

    def add(self, partial: Partial) -> None:
        self.events += partial.events
        self.total += partial.value_sum
        if partial.value_min is not None and (self.low is None or partial.value_min < self.low):
            self.low = partial.value_min
        if partial.value_max is not None and (self.high is None or partial.value_max > self.high):
            self.high = partial.value_max
        self.uniq |= partial.uniq
        if partial.latest is not None and (self.latest is None or partial.latest > self.latest):
            self.latest = partial.latest

    def quantity(self, aggregation: Aggregation) -> Decimal:
        if aggregation is Aggregation.COUNT:
            return Decimal(self.events)
        if aggregation is Aggregation.SUM:
            return self.total
        if aggregation is Aggregation.AVG:
            return (self.total / self.events).quantize(SCALE) if self.events else ZERO
        if aggregation is Aggregation.MIN:
            return self.low if self.low is not None else ZERO
        if aggregation is Aggregation.MAX:
            return self.high if self.high is not None else ZERO
        if aggregation is Aggregation.UNIQUE_COUNT:
            return Decimal(len(self.uniq))
        if aggregation is Aggregation.LATEST:
            return self.latest[2] if self.latest is not None else ZERO
        raise ValueError(f"{aggregation} is held over time: see held_to_date")


def held_to_date(
    meter: Meter,
    series: dict[Groups, list[Report]],
    period: tuple[datetime, datetime],
    final: datetime,
    now: datetime,
) -> Decimal:
    """A held meter's invoiced quantity of `period` up to `now`, over all its group series:
    the same fold as the usage API's, over every report kept (those before the period carry
    the level in)."""
    start, end = period
    if now <= start:
        return ZERO
    total = ZERO
    for reports in series.values():
        held = held_quantities(meter, reports, [period], [period], lambda _: final, min(now, end))
        found = held.get(0)
        if found is not None and found.quantity is not None:
            total += found.quantity
    return total


def reports_of(partial: Partial) -> list[Report]:
    return [Report(at, id_, value, received) for at, id_, value, received in partial.points]
