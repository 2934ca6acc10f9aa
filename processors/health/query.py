"""The figures health scores are made of, read from ClickHouse for one tenant at a moment.

Every read is bounded in time (`forget_days` back at most), so its cost follows the recent
traffic, not the stored history.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from processors.health.score import Score, TenantUsage, Usage, score
from processors.storage.clickhouse import ClickHouse
from processors.windows import as_utc
from schemas.config import ProductConfig
from schemas.health import Health

WEEK = timedelta(days=7)
T = "DateTime64(3, 'UTC')"


def scores(
    clickhouse: ClickHouse,
    config: ProductConfig,
    health: Health,
    tenant: str,
    at: datetime,
    account: str | None = None,
) -> list[Score]:
    """Every account of `tenant` with an event in the last `forget_days`, lowest score first."""
    p: dict[str, Any] = {
        "tenant": tenant,
        "account": account or "",
        "at": at,
        "active_from": at - timedelta(days=health.active_days),
        "week": at - WEEK,
        "two_weeks": at - 2 * WEEK,
        "forget_from": at - timedelta(days=health.forget_days),
        "rules": [r.name for r in config.activation.rules],
    }
    one = " AND account = {account:String}" if account is not None else ""
    activity = clickhouse.query(
        f"SELECT account, max(timestamp), uniqExactIf(intDiv(toUnixTimestamp64Milli({{at:{T}}})"
        f" - toUnixTimestamp64Milli(timestamp), 86400000), timestamp > {{active_from:{T}}}),"
        f" countIf(timestamp > {{week:{T}}}),"
        f" countIf(timestamp <= {{week:{T}}} AND timestamp > {{two_weeks:{T}}})"
        " FROM events WHERE tenant = {tenant:String} AND account != ''"
        f" AND timestamp > {{forget_from:{T}}} AND timestamp <= {{at:{T}}}{one}"
        " GROUP BY account",
        p,
    )
    features = dict(
        clickhouse.query(
            "SELECT account, uniqExact(feature) FROM feature_minutes WHERE tenant = {tenant:String}"
            f" AND minute > {{active_from:{T}}} AND minute <= {{at:{T}}}{one} GROUP BY account",
            p,
        )
    )
    [(in_use,)] = clickhouse.query(
        "SELECT uniqExact(feature) FROM feature_minutes WHERE tenant = {tenant:String}"
        f" AND minute > {{active_from:{T}}} AND minute <= {{at:{T}}}",
        p,
    )
    met = dict(
        clickhouse.query(
            "SELECT account, uniqExact(rule) FROM activations WHERE tenant = {tenant:String}"
            " AND type = 'activation' AND rule IN {rules:Array(String)}"
            f" AND activated_at <= {{at:{T}}}{one} GROUP BY account",
            p,
        )
    )
    basis = TenantUsage(features_in_use=int(in_use), rules=len(p["rules"]))
    found = [
        score(
            Usage(
                account=name,
                last_event=as_utc(last),
                active_days=int(days),
                features_used=int(features.get(name, 0)),
                last_week=int(week),
                week_before=int(before),
                rules_met=int(met.get(name, 0)),
            ),
            basis,
            health,
            at,
        )
        for name, last, days, week, before in activity
    ]
    return sorted(found, key=lambda s: (s.score, s.account))


def tenants(clickhouse: ClickHouse, health: Health, at: datetime) -> list[str]:
    """The tenants with an event in the last `forget_days`: those that have accounts to score."""
    rows = clickhouse.query(
        f"SELECT DISTINCT tenant FROM events WHERE timestamp > {{since:{T}}}"
        f" AND timestamp <= {{at:{T}}} ORDER BY tenant",
        {"since": at - timedelta(days=health.forget_days), "at": at},
    )
    return [r[0] for r in rows]
