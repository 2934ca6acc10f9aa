"""Reading feature usage: counters in minute/hour/day windows, adoption, and one account's breadth.

Every figure is cut from the per-minute rows at query time, in the caller's zone, so an hour or a
day in any zone is exact, and distinct users over a range are counted over the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from processors.clickhouse import ClickHouse
from processors.feature_usage import TABLE


class Window(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    TOTAL = "total"


_WINDOW_START = {
    Window.MINUTE: "minute",
    Window.HOUR: "toStartOfHour(minute, {tz:String})",
    Window.DAY: "toStartOfDay(minute, {tz:String})",
    Window.TOTAL: "{start:DateTime('UTC')}",
}


def to_minute(moment: datetime) -> datetime:
    """Ranges are whole minutes: the rows' granularity, and the raw events are cut alike."""
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True)
class UsageRow:
    window_start: datetime
    account: str
    feature: str
    events: int
    users: int

    def as_json(self) -> dict[str, Any]:
        return {
            "window_start": self.window_start.isoformat(),
            "account": self.account,
            "feature": self.feature,
            "events": self.events,
            "users": self.users,
        }


def usage(
    clickhouse: ClickHouse,
    tenant: str,
    start: datetime,
    to: datetime,
    window: Window = Window.TOTAL,
    tz: str = "UTC",
    accounts: list[str] | None = None,
    features: list[str] | None = None,
) -> list[UsageRow]:
    """Events and distinct users per (window, account, feature) over [start, to)."""
    where = [
        "tenant = {tenant:String}",
        "minute >= {start:DateTime('UTC')}",
        "minute < {to:DateTime('UTC')}",
    ]
    if accounts:
        where.append("account IN {accounts:Array(String)}")
    if features:
        where.append("feature IN {features:Array(String)}")
    rows = clickhouse.query(
        f"SELECT toUnixTimestamp({_WINDOW_START[window]}) AS w, account, feature, sum(events),"
        f" uniqExactArray(users) FROM {TABLE} WHERE {' AND '.join(where)}"
        " GROUP BY w, account, feature ORDER BY w, account, feature",
        {"tenant": tenant, "start": to_minute(start), "to": to_minute(to), "tz": tz,
         "accounts": accounts or [], "features": features or []},
    )  # fmt: skip
    return [
        UsageRow(datetime.fromtimestamp(int(w), UTC), account, feature, int(n), int(users))
        for w, account, feature, n, users in rows
    ]


@dataclass(frozen=True)
class Adoption:
    active_accounts: int  # accounts with any event in the range
    accounts_using: int  # of those, accounts that used the feature

    @property
    def share(self) -> float:
        return self.accounts_using / self.active_accounts if self.active_accounts else 0.0


def adoption(
    clickhouse: ClickHouse, tenant: str, feature: str, start: datetime, to: datetime
) -> Adoption:
    parameters = {"tenant": tenant, "feature": feature, "start": to_minute(start),
                  "to": to_minute(to)}  # fmt: skip
    [(active,)] = clickhouse.query(
        "SELECT uniqExact(account) FROM events WHERE tenant = {tenant:String} AND account != ''"
        " AND timestamp >= {start:DateTime64(3, 'UTC')} AND timestamp < {to:DateTime64(3, 'UTC')}",
        parameters,
    )
    [(using,)] = clickhouse.query(
        f"SELECT uniqExact(account) FROM {TABLE} WHERE tenant = {{tenant:String}}"
        " AND feature = {feature:String}"
        " AND minute >= {start:DateTime('UTC')} AND minute < {to:DateTime('UTC')}",
        parameters,
    )
    return Adoption(int(active), int(using))


@dataclass(frozen=True)
class FeatureUse:
    feature: str
    events: int
    users: int
    active_days: int  # calendar days (in the zone asked) with any use
    first_used: datetime  # to the minute
    last_used: datetime

    def as_json(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "events": self.events,
            "users": self.users,
            "active_days": self.active_days,
            "first_used": self.first_used.isoformat(),
            "last_used": self.last_used.isoformat(),
        }


def account_features(
    clickhouse: ClickHouse, tenant: str, account: str, start: datetime, to: datetime, tz: str
) -> tuple[list[FeatureUse], int]:
    """What one account used over [start, to), most used first, and how many features any
    account of the tenant used in that range (the denominator of its breadth)."""
    parameters = {"tenant": tenant, "account": account, "start": to_minute(start),
                  "to": to_minute(to), "tz": tz}  # fmt: skip
    in_range = "minute >= {start:DateTime('UTC')} AND minute < {to:DateTime('UTC')}"
    rows = clickhouse.query(
        "SELECT feature, sum(events), uniqExactArray(users),"
        f" uniqExact(toDate(minute, {{tz:String}})), min(minute), max(minute) FROM {TABLE}"
        f" WHERE tenant = {{tenant:String}} AND account = {{account:String}} AND {in_range}"
        " GROUP BY feature ORDER BY sum(events) DESC, feature",
        parameters,
    )
    [(known,)] = clickhouse.query(
        f"SELECT uniqExact(feature) FROM {TABLE} WHERE tenant = {{tenant:String}} AND {in_range}",
        parameters,
    )
    used = [
        FeatureUse(feature, int(n), int(users), int(days), _utc(first), _utc(last))
        for feature, n, users, days, first, last in rows
    ]
    return used, int(known)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
