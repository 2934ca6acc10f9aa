"""Meters recomputed from the raw events: backfill writes them, reconciliation compares them.

Both read the `events` table day by day and fold with the same code as the live processor
(processors.metering.fold.fold), so a difference means a lost or doubled write, never two readings
of the rules.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from processors.metering.fold import COLUMNS, TABLE, Key, Partial, fold, to_rows
from processors.model import Event
from processors.storage.clickhouse import ClickHouse
from processors.windows import EPOCH, as_utc, to_minute
from schemas.config import ProductConfig
from schemas.enriched import CONTRACT_VERSION
from schemas.meters import ANY_EVENT

StepReport = Callable[[int, int, str], None]  # (step, steps, what)


def _days(start: datetime, to: datetime) -> Iterator[tuple[datetime, datetime]]:
    day = start
    while day < to:
        following = min(day + timedelta(days=1), to)
        yield day, following
        day = following


def raw_events(
    clickhouse: ClickHouse, config: ProductConfig, start: datetime, to: datetime, tenant: str | None
) -> list[Event]:
    """The stored track events in [start, to) that any configured meter may count."""
    names = sorted({name for m in config.meters for name in m.events})
    where = "type = 'track' AND timestamp >= {start:DateTime64(3, 'UTC')}"
    where += " AND timestamp < {to:DateTime64(3, 'UTC')}"
    if ANY_EVENT not in names:
        where += " AND event IN {names:Array(String)}"
    if tenant is not None:
        where += " AND tenant = {tenant:String}"
    rows = clickhouse.query(
        "SELECT tenant, message_id, event, account, user_id, anonymous_id, timestamp,"
        f" received_at, properties FROM events WHERE {where}",
        {"start": start, "to": to, "names": names, "tenant": tenant or ""},
    )
    return [
        Event(
            contract=CONTRACT_VERSION, tenant=r[0], type="track", message_id=r[1], event=r[2],
            account=r[3], user_id=r[4], anonymous_id=r[5], timestamp=as_utc(r[6]),
            received_at=as_utc(r[7]), properties=json.loads(r[8]),
        )
        for r in rows
    ]  # fmt: skip


def recompute(
    clickhouse: ClickHouse,
    config: ProductConfig,
    start: datetime,
    to: datetime,
    tenant: str | None = None,
    progress: StepReport | None = None,
) -> dict[Key, Partial]:
    start, to = to_minute(start), to_minute(to)
    days = list(_days(start, to))
    partials: dict[Key, Partial] = {}
    for step, (day, following) in enumerate(days, 1):
        partials.update(fold(config, raw_events(clickhouse, config, day, following, tenant)))
        if progress:
            progress(step, len(days), f"{day:%Y-%m-%d}")
    return partials


# what a meter_minutes key adds up to, in a form both sides produce identically
Totals = tuple[int, int, Any, Any, Any, tuple[str, ...], Any, tuple[Any, ...]]


def _points(points: Any) -> tuple[Any, ...]:
    """Reports compared in UTC and in order, whatever the driver hands back."""
    return tuple(sorted((as_utc(at), str(id_), value) for at, id_, value, *_ in points))


def _totals(p: Partial) -> Totals:
    latest = p.latest[2] if p.latest else None
    return (
        p.events,
        p.skipped,
        p.value_sum,
        p.value_min,
        p.value_max,
        tuple(sorted(p.uniq)),
        latest,
        _points(p.points),
    )


def stored_totals(
    clickhouse: ClickHouse, meters: list[str], start: datetime, to: datetime, tenant: str | None
) -> dict[Key, Totals]:
    where = "meter IN {meters:Array(String)} AND minute >= {start:DateTime('UTC')}"
    where += " AND minute < {to:DateTime('UTC')}"
    if tenant is not None:
        where += " AND tenant = {tenant:String}"
    rows = clickhouse.query(
        "SELECT tenant, meter, customer, mapKeys(groups) AS k, mapValues(groups) AS v, minute,"
        " adjustment, sum(events), sum(skipped), sum(value_sum), min(value_min), max(value_max),"
        " arraySort(groupUniqArrayArray(uniq_values)),"
        " argMaxIf(latest_value, (latest_at, latest_id), latest_value IS NOT NULL),"
        " groupArrayArray(points)"
        f" FROM {TABLE} WHERE {where}"
        " GROUP BY tenant, meter, customer, k, v, minute, adjustment",
        {"meters": meters, "start": to_minute(start), "to": to_minute(to), "tenant": tenant or ""},
    )
    out: dict[Key, Totals] = {}
    for tenant_, meter, customer, k, v, minute, adjustment, *totals in rows:
        key = (tenant_, meter, customer, tuple(zip(k, v, strict=True)), minute, adjustment, 0)
        events, skipped, value_sum, value_min, value_max, uniq, latest, points = totals
        out[_normal(key)] = (
            int(events), int(skipped), value_sum, value_min, value_max, tuple(uniq), latest,
            _points(points),
        )  # fmt: skip
    return out


def _normal(key: Key) -> Key:
    """Keys compared in UTC with sorted groups, whatever the driver hands back."""
    tenant, meter, customer, groups, minute, adjustment, _ = key
    minute = to_minute(as_utc(minute))
    return (tenant, meter, customer, tuple(sorted(groups)), minute, int(adjustment), 0)


@dataclass(frozen=True)
class Difference:
    key: Key
    stored: Totals | None
    recomputed: Totals | None

    def describe(self) -> str:
        tenant, meter, customer, groups, minute, adjustment, _ = self.key
        where = f"{meter} tenant={tenant} customer={customer} minute={minute:%Y-%m-%d %H:%M}"
        if groups:
            where += f" groups={dict(groups)}"
        if adjustment:
            where += " (late)"
        names = ("events", "skipped", "sum", "min", "max", "distinct", "latest", "reports")
        if self.stored is None or self.recomputed is None:
            side = "only stored" if self.recomputed is None else "missing from stored"
            return f"{where}: {side}"
        changes = [
            f"{n} stored {_short(a)} != recomputed {_short(b)}"
            for n, a, b in zip(names, self.stored, self.recomputed, strict=True)
            if a != b
        ]
        return f"{where}: {', '.join(changes)}"


def _short(value: Any) -> str:
    if isinstance(value, tuple) and len(value) > 3:
        return f"{len(value)} values"
    return str(value)


def reconcile(
    clickhouse: ClickHouse,
    config: ProductConfig,
    start: datetime,
    to: datetime,
    tenant: str | None = None,
    progress: StepReport | None = None,
) -> list[Difference]:
    """Every (tenant, meter, customer, groups, minute) whose stored totals differ from the raw."""
    recomputed = {
        _normal(k): _totals(p)
        for k, p in recompute(clickhouse, config, start, to, tenant, progress).items()
    }
    stored = stored_totals(clickhouse, [m.name for m in config.meters], start, to, tenant)
    keys = sorted(set(recomputed) | set(stored), key=lambda k: (k[1], k[0], k[2], k[4], k[3]))
    return [
        Difference(k, stored.get(k), recomputed.get(k))
        for k in keys
        if stored.get(k) != recomputed.get(k)
    ]


def backfill(
    clickhouse: ClickHouse,
    config: ProductConfig,
    start: datetime,
    to: datetime,
    tenant: str | None = None,
    progress: StepReport | None = None,
) -> int:
    """Replace the meters' rows in [start, to) with a recomputation; returns rows written.

    Deleting rows could take the newest Kafka marks with them, so the marks are read first and
    written back as empty rows: a worker that restarts afterwards skips exactly what it did."""
    meters = [m.name for m in config.meters]
    start, to = to_minute(start), to_minute(to)
    marks = clickhouse.query(
        f"SELECT kafka_partition, max(kafka_next_offset) FROM {TABLE} GROUP BY kafka_partition"
    )
    partials = recompute(clickhouse, config, start, to, tenant, progress)
    where = "meter IN {meters:Array(String)} AND minute >= {start:DateTime('UTC')}"
    where += " AND minute < {to:DateTime('UTC')}"
    if tenant is not None:
        where += " AND tenant = {tenant:String}"
    clickhouse.command(
        f"ALTER TABLE {TABLE} DELETE WHERE {where} SETTINGS mutations_sync = 2",
        {"meters": meters, "start": start, "to": to, "tenant": tenant or ""},
    )
    rows = to_rows(partials, {})
    keep: list[list[Any]] = [
        ["", "", "", {}, EPOCH, 0, 0, 0, 0, None, None, [], None, EPOCH, "", [], [], 0,
         int(partition), int(offset)]
        for partition, offset in marks
    ]  # fmt: skip
    if rows or keep:
        clickhouse.insert(TABLE, rows + keep, COLUMNS)
    return len(rows)
