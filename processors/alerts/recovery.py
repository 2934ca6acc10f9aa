"""What the alert watch reads back from ClickHouse when it takes partitions of `events`: the
stored rows of the watched meters, the accounts' plan calls and the records already sent.

One set of queries per assignment, none per event: the non-held meters' rows are added up per
account and period by ClickHouse; held meters bring every report (a seat total clamped at zero
must be folded in order from the first)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from processors.alerts.crossings import Armed, Kind, Place, State
from processors.metering.calendar import final_at, period_start
from processors.metering.fold import TABLE, Key, Partial
from processors.storage.clickhouse import ClickHouse
from processors.windows import EPOCH, as_utc
from schemas.config import ProductConfig
from schemas.meters import HELD, Meter

ALERTS_TABLE = "usage_alerts"
PLANS_TABLE = "account_plans"
ALERT_COLUMNS = (
    "id", "kind", "tenant", "account", "meter", "period", "threshold", "generation", "level",
    "quantity", "included", "plan", "with_others", "tier_left", "tier_entered", "late", "at",
)  # fmt: skip
PLAN_COLUMNS = ("tenant", "account", "effective_at", "plan", "message_id")


@dataclass
class Loaded:
    accounts: list[tuple[tuple[str, str], int, list[tuple[datetime, str]]]] = field(
        default_factory=list
    )
    partials: list[tuple[Key, Partial]] = field(default_factory=list)
    states: dict[Place, State] = field(default_factory=dict)


def open_periods(config: ProductConfig, now: datetime) -> list[datetime]:
    """The starts of the periods that can still alert: this one, and the last while in grace."""
    billing = config.billing
    this = period_start(now, billing)
    last = period_start(this - timedelta(milliseconds=1), billing)
    return [last, this] if now < final_at(last, billing) else [this]


def load_partitions(
    clickhouse: ClickHouse,
    config: ProductConfig,
    meters: dict[str, Meter],
    partitions: set[int],
    now: datetime,
) -> Loaded:
    periods = open_periods(config, now)
    parameters: dict[str, Any] = {"parts": sorted(partitions), "first": periods[0],
                                  "zone": config.billing.timezone}  # fmt: skip
    loaded = Loaded()
    seen: dict[tuple[str, str], int] = {}
    tallied = [m.name for m in meters.values() if m.aggregation not in HELD]
    held = [m.name for m in meters.values() if m.aggregation in HELD]
    if tallied:
        loaded.partials += _tallies(clickhouse, config, {**parameters, "meters": tallied}, seen)
    if held:
        loaded.partials += _held_reports(clickhouse, {**parameters, "meters": held}, seen)
    if not seen:
        return loaded
    pairs = sorted(seen)
    plans = _plans(clickhouse, pairs)
    loaded.accounts = [(pair, seen[pair], plans.get(pair, [])) for pair in pairs]
    names = [f"{p.astimezone(config.billing.zone):%Y-%m}" for p in periods]
    loaded.states = states_from(
        clickhouse.query(
            "SELECT DISTINCT tenant, account, meter, period, threshold, generation, kind,"
            f" tier_entered FROM {ALERTS_TABLE}"
            " WHERE (tenant, account) IN {pairs:Array(Tuple(String, String))}"
            " AND period IN {periods:Array(String)}",
            {"pairs": pairs, "periods": names},
        )
    )
    return loaded


WHERE = "kafka_partition IN {parts:Array(UInt32)} AND meter IN {meters:Array(String)}"


def _tallies(
    clickhouse: ClickHouse,
    config: ProductConfig,
    parameters: dict[str, Any],
    seen: dict[tuple[str, str], int],
) -> list[tuple[Key, Partial]]:
    """The non-held meters' on-time rows of the open periods, added up per account and period."""
    out: list[tuple[Key, Partial]] = []
    for row in clickhouse.query(
        "SELECT tenant, customer, meter, formatDateTime(minute, '%Y-%m', {zone:String}) AS p,"
        " kafka_partition, sum(events), sum(value_sum), min(value_min), max(value_max),"
        " groupUniqArrayArray(uniq_values),"
        " argMax((latest_at, latest_id, latest_value), (latest_at, latest_id)),"
        " countIf(latest_value IS NOT NULL)"
        f" FROM {TABLE} WHERE {WHERE} AND adjustment = 0 AND minute >= {{first:DateTime('UTC')}}"
        " GROUP BY tenant, customer, meter, p, kafka_partition",
        parameters,
    ):
        tenant, customer, meter, period, partition, events, total, low, high = row[:9]
        uniq, (at, id_, value), latest = row[9:]
        partial = Partial(
            events=int(events), value_sum=Decimal(total), value_min=low, value_max=high,
            uniq=set(uniq), latest=(as_utc(at), str(id_), Decimal(value)) if latest else None,
        )  # fmt: skip
        start = _start_of(period, config)
        out.append(((tenant, meter, customer, (), start, 0, partition), partial))
        seen[(tenant, customer)] = int(partition)
    return out


def _held_reports(
    clickhouse: ClickHouse, parameters: dict[str, Any], seen: dict[tuple[str, str], int]
) -> list[tuple[Key, Partial]]:
    """Every report of the held meters, on time or late: the invoice of an open period sees
    the late ones received before it became final, and seats fold from the first."""
    out: list[tuple[Key, Partial]] = []
    for (
        tenant,
        customer,
        meter,
        keys,
        values,
        minute,
        points,
        received,
        partition,
    ) in clickhouse.query(
        "SELECT tenant, customer, meter, mapKeys(groups), mapValues(groups), minute,"
        f" points, points_received, kafka_partition FROM {TABLE}"
        f" WHERE {WHERE} AND notEmpty(points)",
        parameters,
    ):
        groups = tuple(zip(keys, values, strict=True))
        key = (tenant, meter, customer, groups, as_utc(minute), 0, partition)
        out.append((key, Partial(points=_points(points, received))))
        seen[(tenant, customer)] = int(partition)
    return out


def _plans(
    clickhouse: ClickHouse, pairs: list[tuple[str, str]]
) -> dict[tuple[str, str], list[tuple[datetime, str]]]:
    plans: dict[tuple[str, str], list[tuple[datetime, str]]] = {}
    for tenant, account, at, plan in clickhouse.query(
        f"SELECT DISTINCT tenant, account, effective_at, plan FROM {PLANS_TABLE}"
        " WHERE (tenant, account) IN {pairs:Array(Tuple(String, String))}"
        " ORDER BY effective_at",
        {"pairs": pairs},
    ):
        plans.setdefault((tenant, account), []).append((as_utc(at), plan))
    return plans


def states_from(records: Iterable[tuple[Any, ...]]) -> dict[Place, State]:
    """Each place's state as its records left it: a threshold whose last record fired is
    fired; one resolved is armed again, one generation on; the tier is the last entered."""
    last: dict[tuple[Place, str], tuple[int, int, str]] = {}
    for tenant, account, meter, period, threshold, generation, kind, entered in records:
        place = Place(tenant, account, meter, period)
        order = (int(generation), 1 if kind == Kind.RESOLVED else 0, entered)
        if order > last.get((place, threshold), (-1, -1, "")):
            last[(place, threshold)] = order
    states: dict[Place, State] = {}
    for (place, threshold), (generation, resolved, entered) in last.items():
        state = states.get(place, State())
        if threshold == "tier":
            states[place] = State(state.thresholds, entered, generation + 1)
        else:
            armed = (
                Armed(fired=False, generation=generation + 1)
                if resolved
                else Armed(True, generation)
            )
            states[place] = State({**state.thresholds, threshold: armed}, state.tier,
                                  state.tier_changes)  # fmt: skip
    return states


def _start_of(period: str, config: ProductConfig) -> datetime:
    year, month = (int(part) for part in period.split("-"))
    local = datetime(year, month, 1, tzinfo=config.billing.zone)
    return period_start(local, config.billing)


def _points(points: Any, received: Any) -> list[tuple[datetime, str, Decimal, datetime]]:
    """A row's reports; rows from before receipt times were kept are taken as seen by all."""
    if len(received) != len(points):
        received = [EPOCH] * len(points)
    return [
        (as_utc(at), str(id_), Decimal(value), as_utc(r))
        for (at, id_, value), r in zip(points, received, strict=True)
    ]
