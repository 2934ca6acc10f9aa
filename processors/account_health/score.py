"""The health score of one account from its usage figures: each component 0-100, then weighed.

Pure: the figures come from processors.account_health.query, so the arithmetic is tested by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.health import Health

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Usage:
    """One account's figures at a moment, over the windows `[health]` names."""

    account: str
    last_event: datetime
    active_days: int  # days of the last `active_days` with an event
    features_used: int  # distinct features in those days
    last_week: int  # events in the last 7 days
    week_before: int  # events in the 7 days before
    rules_met: int  # activation rules the account (or one of its users) met


@dataclass(frozen=True)
class TenantUsage:
    """What the components of every account of a tenant are measured against."""

    features_in_use: int  # distinct features any account used in the last `active_days` days
    rules: int  # activation rules configured


@dataclass(frozen=True)
class Score:
    account: str
    score: float
    components: dict[str, float]
    last_event: datetime


def score(usage: Usage, tenant: TenantUsage, config: Health, at: datetime) -> Score:
    """Components without a basis (no features in use, no activation rules) are left out, and
    the others weigh as configured."""
    since = max((at - usage.last_event) / DAY, 0.0)
    components = {
        "recency": 100 * max(0.0, 1 - since / config.recency_days),
        "frequency": 100 * min(usage.active_days, config.active_days) / config.active_days,
    }
    if tenant.features_in_use:
        components["breadth"] = 100 * min(usage.features_used / tenant.features_in_use, 1.0)
    both_weeks = usage.last_week + usage.week_before
    components["trend"] = 100 * usage.last_week / both_weeks if both_weeks else 0.0
    if tenant.rules:
        components["activation"] = 100 * usage.rules_met / tenant.rules
    weights = {k: w for k, w in config.weights.model_dump().items() if k in components and w}
    total = sum(weights.values())
    value = sum(components[k] * w for k, w in weights.items()) / total if total else 0.0
    return Score(
        account=usage.account,
        score=round(value, 1),
        components={k: round(v, 1) for k, v in components.items()},
        last_event=usage.last_event,
    )
