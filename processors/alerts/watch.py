"""The alert watch: period-to-date quantities per (account, meter) kept by the batch pass, and
the crossings they make, sent to Kafka first and stored in ClickHouse after.

State lives in the worker, per Kafka partition of `events` (an account's events all come through
one): loaded from ClickHouse the first time a batch comes after the partition is assigned, then
moved by each batch's partial rows (the metering fold's, after their insert). Nothing is asked
of ClickHouse per event. A batch whose records could not be sent raises and is retried; the
places it moved stay due, so the retry (which folds nothing new: the rows are written) sends
them. A worker killed after the rows' insert and before the send finds the quantities past the
threshold on its next load, with no record stored: it sends the record then, with the same id.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from processors.alerts.crossings import Crossing, Place, State, evaluate
from processors.alerts.recovery import Loaded
from processors.alerts.to_date import Groups, Tally, held_to_date, reports_of
from processors.metering.calendar import final_at, period_end, period_start
from processors.metering.fold import Key, Partial
from processors.metering.held_fold import Report
from processors.model import Delivery
from schemas.config import ProductConfig
from schemas.meters import HELD, Meter
from schemas.plans import Plan

log = logging.getLogger(__name__)
PLAN_TRAIT = "plan"  # Segment's reserved group trait
HELD_SWEEP = timedelta(seconds=60)  # held quantities grow with time: looked at this often


class AlertSink(Protocol):
    """Where records go first: the `usage_alerts` topic. Returns once every one is held."""

    def send(self, records: Sequence[dict[str, Any]]) -> None: ...


class AlertStore(Protocol):
    """Where records are kept after: the `usage_alerts` table, and the plans seen."""

    def insert_alerts(self, records: Sequence[dict[str, Any]]) -> None: ...

    def insert_plans(self, rows: Sequence[tuple[str, str, datetime, str, str]]) -> None: ...


@dataclass
class Account:
    """One account's plan calls, as (effective_at, plan), in time order."""

    plans: list[tuple[datetime, str]] = field(default_factory=list)
    partition: int = 0


def watched_meters(config: ProductConfig) -> dict[str, Meter]:
    """The meters some plan has a threshold or a tier on: the only ones the watch keeps."""
    watched = {t.meter for p in config.plans for t in p.thresholds}
    watched |= {p.tiers.meter for p in config.plans if p.tiers is not None}
    return {m.name: m for m in config.meters if m.name in watched}


def period_name(start: datetime, config: ProductConfig) -> str:
    return f"{start.astimezone(config.billing.zone):%Y-%m}"


def record(crossing: Crossing, late: bool, at: datetime) -> dict[str, Any]:
    """A crossing as it goes to the topic, the table and the webhooks (decimals as text)."""
    place = crossing.place

    def text(value: Decimal | None) -> str | None:
        return None if value is None else f"{value.normalize():f}"

    return {
        "type": "usage_alert", "id": crossing.id, "kind": crossing.kind.value,
        "tenant": place.tenant, "account": place.account, "meter": place.meter,
        "period": place.period, "threshold": crossing.threshold or "tier",
        "generation": crossing.generation, "level": text(crossing.level),
        "quantity": text(crossing.quantity), "included": text(crossing.included),
        "plan": crossing.plan, "with_others": list(crossing.with_others),
        "tier_left": crossing.tier_left, "tier_entered": crossing.tier_entered,
        "late": late, "at": at.isoformat(timespec="milliseconds"),
    }  # fmt: skip


class AlertWatch:
    def __init__(
        self,
        config: ProductConfig,
        sink: AlertSink,
        store: AlertStore,
        load: Callable[[set[int]], Loaded] | None = None,
        assigned: Callable[[], set[int]] = set,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """`load` reads a partition's stored state (recovery.load_partitions); `assigned` says
        which partitions of `events` the worker holds now."""
        self._config = config
        self._sink, self._store = sink, store
        self._clock = clock
        self._load = load
        self._held_now = assigned
        self._hysteresis = config.alerts.hysteresis_percent
        self.meters = watched_meters(config)
        self._accounts: dict[tuple[str, str], Account] = {}
        # (tenant, account, meter, period start) → the invoiced view so far
        self._tallies: dict[tuple[str, str, str, datetime], Tally] = {}
        # held meters: every report of each (tenant, account, meter) and group values
        self._series: dict[tuple[str, str, str], dict[Groups, list[Report]]] = {}
        self._states: dict[Place, State] = {}
        self._due: set[tuple[str, str, str, datetime]] = set()
        self._loaded: set[int] = set()
        self._assigned: set[int] = set()
        self._swept = datetime.min.replace(tzinfo=UTC)

    @property
    def active(self) -> bool:
        return bool(self.meters)

    # -- assignment ------------------------------------------------------------------------

    def _reassigned(self) -> None:
        """State of the partitions given up goes: another worker holds them now."""
        self._assigned = set(self._held_now())
        gone = self._loaded - self._assigned
        if gone:
            self._forget(gone)

    def _forget(self, partitions: set[int]) -> None:
        self._loaded -= partitions
        mine = {k for k, a in self._accounts.items() if a.partition in partitions}
        for key in mine:
            del self._accounts[key]
        self._tallies = {k: v for k, v in self._tallies.items() if k[:2] not in mine}
        self._series = {k: v for k, v in self._series.items() if k[:2] not in mine}
        self._states = {p: s for p, s in self._states.items() if (p.tenant, p.account) not in mine}
        self._due = {k for k in self._due if k[:2] not in mine}

    def before(self, originals: Sequence[Delivery]) -> None:
        """Before the batch's rows are written: load the state of partitions new to the watch,
        as stored without this batch, which `after` then adds."""
        self._reassigned()
        wanted = ({d.partition for d in originals} | self._assigned) - self._loaded
        if not wanted or self._load is None:
            return
        loaded = self._load(wanted)
        self.restore(loaded)
        self._loaded |= wanted

    def restore(self, loaded: Loaded) -> None:
        """What recovery read: rows, plans and records. Every place loaded is looked at on the
        next `after`, so a crossing a crash kept from being sent is sent then."""
        for (tenant, account), partition, plans in loaded.accounts:
            found = self._accounts.setdefault((tenant, account), Account(partition=partition))
            found.plans = sorted({*found.plans, *plans})
        for key, partial in loaded.partials:
            self._add(key, partial)
        for place, state in loaded.states.items():
            self._states[place] = state

    # -- the batch pass ------------------------------------------------------------------

    def after(self, originals: Sequence[Delivery], partials: dict[Key, Partial]) -> None:
        """After the batch's rows are written: its plan calls and partial rows into the state,
        then every place due looked at; raises if the records cannot be sent (retried)."""
        plans = self._plan_calls(originals)
        for key, partial in partials.items():
            if key[1] in self.meters:
                self._add(key, partial)
        if plans:
            self._store.insert_plans(plans)
        now = self._clock()
        if now - self._swept >= HELD_SWEEP:  # once a minute, not per batch: a pass over all
            self._swept = now
            self._prune(now)
            self._due |= {k for k in self._tallies_and_series() if self.meters[k[2]].aggregation
                          in HELD}  # fmt: skip
        self.flush(now)

    def _plan_calls(
        self, originals: Iterable[Delivery]
    ) -> list[tuple[str, str, datetime, str, str]]:
        rows = []
        for d in originals:
            e = d.event
            plan = e.traits.get(PLAN_TRAIT) if e.type == "group" and e.account else None
            if not isinstance(plan, str) or not plan:
                continue
            account = self._accounts.setdefault(
                (e.tenant, e.account), Account(partition=d.partition)
            )
            account.plans = sorted({*account.plans, (e.timestamp, plan)})
            rows.append((e.tenant, e.account, e.timestamp, plan, e.message_id))
        if rows:  # those accounts' places are looked at under the new plan, in one pass
            changed = {(tenant, account) for tenant, account, *_ in rows}
            self._due |= {k for k in self._tallies_and_series() if k[:2] in changed}
        return rows

    def _tallies_and_series(self) -> set[tuple[str, str, str, datetime]]:
        out = set(self._tallies)
        now = self._clock()
        for tenant, account, meter in self._series:
            out.add((tenant, account, meter, period_start(now, self._config.billing)))
        return out

    def _add(self, key: Key, partial: Partial) -> None:
        tenant, meter_name, customer, groups, minute, late, partition = key
        meter = self.meters.get(meter_name)
        if meter is None:
            return
        self._accounts.setdefault((tenant, customer), Account(partition=partition))
        start = period_start(minute, self._config.billing)
        if meter.aggregation in HELD:
            series = self._series.setdefault((tenant, customer, meter_name), {})
            series.setdefault(groups, []).extend(reports_of(partial))
            # a late report moves every open period from its time on: the one it is for, and now
            now = period_start(self._clock(), self._config.billing)
            self._due |= {
                (tenant, customer, meter_name, start),
                (tenant, customer, meter_name, now),
            }
            return
        if late:  # received after its period became final: the invoice does not move
            return
        place = (tenant, customer, meter_name, start)
        self._tallies.setdefault(place, Tally()).add(partial)
        self._due.add(place)

    def quantity(self, tenant: str, account: str, meter: str, start: datetime) -> Decimal:
        """The invoiced quantity of the period starting at `start`, to now."""
        found = self.meters[meter]
        if found.aggregation in HELD:
            billing = self._config.billing
            end = period_end(start, billing)
            series = self._series.get((tenant, account, meter), {})
            return held_to_date(found, series, (start, end), final_at(start, billing),
                                self._clock())  # fmt: skip
        tally = self._tallies.get((tenant, account, meter, start))
        return tally.quantity(found.aggregation) if tally is not None else Decimal(0)

    def plan_of(self, tenant: str, account: str, at: datetime) -> Plan | None:
        """The plan in force at `at`: the last plan call before it, else the default."""
        found = self._accounts.get((tenant, account))
        named = [p for t, p in found.plans if t <= at] if found is not None else []
        return self._config.plan(named[-1] if named else None)

    def flush(self, now: datetime) -> None:
        """Look at every due place; send what that says, then remember it."""
        billing = self._config.billing
        states: dict[Place, State] = {}
        out: list[dict[str, Any]] = []
        for tenant, account, meter, start in sorted(self._due):
            end = period_end(start, billing)
            if now >= final_at(start, billing) or now < start:
                continue  # a final period never alerts; a future one has nothing yet
            plan = self.plan_of(tenant, account, min(now, end - timedelta(milliseconds=1)))
            if plan is None:
                continue
            place = Place(tenant, account, meter, period_name(start, self._config))
            quantity = self.quantity(tenant, account, meter, start)
            state, crossings = evaluate(
                place, plan, self._states.get(place, State()), quantity, self._hysteresis
            )
            states[place] = state
            out += [record(c, late=now >= end, at=now) for c in crossings]
        if out:
            self._sink.send(out)  # held by Kafka first: raises, and all stays due, if not
            self._store.insert_alerts(out)
        self._states |= states
        self._due.clear()

    def _prune(self, now: datetime) -> None:
        """Periods that are final move no more: their tallies go."""
        billing = self._config.billing
        finals = {start: final_at(start, billing) for start in {k[3] for k in self._tallies}}
        done = {k for k in self._tallies if now >= finals[k[3]]}
        for key in done:
            del self._tallies[key]
