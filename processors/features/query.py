"""Reading feature usage: counters in minute/hour/day windows, adoption, and one account's breadth.

Every figure is cut from the per-minute rows at query time, in the caller's zone, so an hour or a
day in any zone is exact, and distinct users over a range are counted over the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

from processors.features.processor import TABLE
from processors.storage.clickhouse import ClickHouse
from processors.windows import FeatureWindow, as_utc, to_minute, unix_time, window_start_sql


# Events and distinct users of one feature, account and window.
class FeatureUsageOut(BaseModel):
    window_start: str
    account: str
    feature: str
    events: int
    users: int


def usage(
    clickhouse: ClickHouse,
    tenant: str,
    start: datetime,
    to: datetime,
    window: FeatureWindow = FeatureWindow.TOTAL,
    tz: str = "UTC",
    accounts: list[str] | None = None,
    features: list[str] | None = None,
) -> list[FeatureUsageOut]:
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
        f"SELECT {window_start_sql(window)} AS w, account, feature, sum(events),"
        f" uniqExactArray(users) FROM {TABLE} WHERE {' AND '.join(where)}"
        " GROUP BY w, account, feature ORDER BY w, account, feature",
        {"tenant": tenant, "start": to_minute(start), "to": to_minute(to), "tz": tz,
         "accounts": accounts or [], "features": features or []},
    )  # fmt: skip
    return [
        FeatureUsageOut(
            window_start=unix_time(w).isoformat(),
            account=account,
            feature=feature,
            events=int(n),
            users=int(users),
        )
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


# How one account used one feature over a range.
class FeatureUseOut(BaseModel):
    feature: str
    events: int
    users: int
    active_days: int  # calendar days (in the zone asked) with any use
    first_used: str  # to the minute
    last_used: str


def account_features(
    clickhouse: ClickHouse, tenant: str, account: str, start: datetime, to: datetime, tz: str
) -> tuple[list[FeatureUseOut], int]:
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
        FeatureUseOut(
            feature=feature,
            events=int(n),
            users=int(users),
            active_days=int(days),
            first_used=as_utc(first).isoformat(),
            last_used=as_utc(last).isoformat(),
        )
        for feature, n, users, days, first, last in rows
    ]
    return used, int(known)
