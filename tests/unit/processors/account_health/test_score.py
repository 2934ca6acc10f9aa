"""The health score's arithmetic, on figures whose components are worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from processors.account_health.score import TenantUsage, Usage, score
from schemas.config import ConfigError, parse_config
from schemas.health import Health

AT = datetime(2026, 6, 30, tzinfo=UTC)
HEALTH = Health(recency_days=10, active_days=20, forget_days=30)
USAGE = Usage(
    account="a",
    last_event=AT - timedelta(days=2.5),  # recency 100 x (1 - 2.5 / 10) = 75
    active_days=5,  # frequency 5 / 20 = 25
    features_used=3,  # breadth 3 / 4 = 75
    last_week=30,  # trend 30 / (30 + 10) = 75
    week_before=10,
    rules_met=1,  # activation 1 / 2 = 50
)


def test_each_component_and_their_mean() -> None:
    found = score(USAGE, TenantUsage(features_in_use=4, rules=2), HEALTH, AT)
    assert found.components == {
        "recency": 75.0, "frequency": 25.0, "breadth": 75.0, "trend": 75.0, "activation": 50.0
    }  # fmt: skip
    assert found.score == 60.0  # (75 + 25 + 75 + 75 + 50) / 5


def test_weights_and_components_without_a_basis() -> None:
    weighted = Health(recency_days=10, active_days=20, forget_days=30,
                      weights={"recency": 2, "activation": 0})  # type: ignore[arg-type]  # fmt: skip
    found = score(USAGE, TenantUsage(features_in_use=4, rules=2), weighted, AT)
    assert found.score == 65.0  # (2 x 75 + 25 + 75 + 75) / 5
    bare = score(USAGE, TenantUsage(features_in_use=0, rules=0), HEALTH, AT)
    assert set(bare.components) == {"recency", "frequency", "trend"}
    assert bare.score == 58.3  # (75 + 25 + 75) / 3


def test_a_silent_account_scores_low() -> None:
    silent = Usage("b", AT - timedelta(days=20), 1, 0, 0, 0, 0)
    found = score(silent, TenantUsage(features_in_use=4, rules=2), HEALTH, AT)
    assert found.components == {
        "recency": 0.0, "frequency": 5.0, "breadth": 0.0, "trend": 0.0, "activation": 0.0
    }  # fmt: skip
    assert found.score == 1.0


def test_the_health_section_is_validated_with_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"health": {"threshold": 140, "recency_days": 60, "forget_days": 30,
                                 "weights": {"trend": -1, "reach": 1}}})  # fmt: skip
    report = caught.value.report()
    assert "health.threshold" in report and "health.weights.trend" in report
    assert "health.weights.reach" in report
    with pytest.raises(ConfigError, match="`forget_days` must cover"):
        parse_config({"health": {"recency_days": 60, "forget_days": 30}})
    with pytest.raises(ConfigError, match="at least one weight"):
        zero = dict.fromkeys(["recency", "frequency", "breadth", "trend", "activation"], 0)
        parse_config({"health": {"weights": zero}})
