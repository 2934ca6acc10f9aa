"""The figures health scores are made of, read from ClickHouse for one tenant at a moment.

Activity is what the feature counters hold (feature_minutes: events per account, feature and
minute), not the raw events: a check reads one row per account, feature and active minute of the
last `forget_days`, however many events those minutes hold and however long the stored history.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from processors.account_health.score import Score, TenantUsage, Usage, score
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
    """Every account of `tenant` that used a feature in the last `forget_days`, lowest first."""
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
        "SELECT account, max(minute),"
        f" uniqExactIf(intDiv(toUnixTimestamp64Milli({{at:{T}}}) - toUnixTimestamp(minute) * 1000,"
        f" 86400000), minute > {{active_from:{T}}}),"
        f" sumIf(events, minute > {{week:{T}}}),"
        f" sumIf(events, minute <= {{week:{T}}} AND minute > {{two_weeks:{T}}}),"
        f" uniqExactIf(feature, minute > {{active_from:{T}}})"
        " FROM feature_minutes WHERE tenant = {tenant:String}"
        f" AND minute > {{forget_from:{T}}} AND minute <= {{at:{T}}}{one}"
        " GROUP BY account",
        p,
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
                features_used=int(used),
                last_week=int(week),
                week_before=int(before),
                rules_met=int(met.get(name, 0)),
            ),
            basis,
            health,
            at,
        )
        for name, last, days, week, before, used in activity
    ]
    return sorted(found, key=lambda s: (s.score, s.account))


def tenants(clickhouse: ClickHouse, health: Health, at: datetime) -> list[str]:
    """The tenants with feature use in the last `forget_days`: those with accounts to score."""
    rows = clickhouse.query(
        f"SELECT DISTINCT tenant FROM feature_minutes WHERE minute > {{since:{T}}}"
        f" AND minute <= {{at:{T}}} ORDER BY tenant",
        {"since": at - timedelta(days=health.forget_days), "at": at},
    )
    return [r[0] for r in rows]
