"""Health figures read from the real chDB engine, on a data set whose scores are worked by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from processors.account_health.query import scores, tenants
from processors.api.app import create_read_api
from processors.features.processor import FeatureUsageProcessor
from processors.model import Delivery
from processors.storage.clickhouse import ClickHouse
from processors.storage.events import ClickHouseEventStore
from schemas.config import parse_config
from tests.integration.test_metering_clickhouse import event

pytestmark = pytest.mark.integration

AT = datetime(2026, 6, 30, tzinfo=UTC)
CONFIG = parse_config(
    {
        "health": {"threshold": 40, "recency_days": 10, "active_days": 20, "forget_days": 30},
        "activation": {"rules": [
            {"name": "r1", "subject": "account", "start": "signed_up", "window": "14d",
             "all_of": [{"event": "report"}]},
            {"name": "r2", "subject": "user", "start": "signed_up", "window": "14d",
             "all_of": [{"event": "share"}]},
        ]},
    }
)  # fmt: skip
assert CONFIG.health is not None
HEALTH = CONFIG.health


def ago(days: float) -> datetime:
    return AT - timedelta(days=days)


def load(clickhouse: ClickHouse) -> None:
    events = [
        # good: last event 2.5 days ago; active on days 2, 3, 9 and 12 back (two on day 9);
        # 2 events in the last 7 days, 3 in the 7 before; features report, export, share
        event(ago(2.5), "report", account="good"),
        event(ago(3), "export", account="good"),
        event(ago(9), "share", account="good"),
        event(ago(9.5), "report", account="good"),
        event(ago(12), "report", account="good"),
        # bad: one upload 15 days ago
        event(ago(15), "upload", account="bad"),
        # gone: silent for longer than forget_days; not scored
        event(ago(40), "report", account="gone"),
        # another tenant's account is not this tenant's
        event(ago(1), "report", account="elsewhere", tenant="other"),
    ]
    deliveries = [Delivery(e, 0, i) for i, e in enumerate(events)]
    kept = ClickHouseEventStore(clickhouse).store(deliveries)
    FeatureUsageProcessor(clickhouse, CONFIG.features).write(kept)
    activation: list[Any] = ["r1:good", "activation", "acme", "r1", "account", "good", "",
                             ago(13), ago(1), ago(12)]  # fmt: skip
    clickhouse.insert(
        "activations",
        [activation],
        ["id", "type", "tenant", "rule", "subject", "account", "user_id", "started_at",
         "deadline", "activated_at"],
    )  # fmt: skip


def test_scores_from_stored_events_features_and_activations(clickhouse: ClickHouse) -> None:
    load(clickhouse)
    bad, good = scores(clickhouse, CONFIG, HEALTH, "acme", AT)
    # features in use by the tenant in the last 20 days: report, export, share, upload
    assert good.components == {
        "recency": 75.0,  # 1 - 2.5 / 10
        "frequency": 20.0,  # 4 of 20 days
        "breadth": 75.0,  # 3 of 4
        "trend": 40.0,  # 2 / (2 + 3)
        "activation": 50.0,  # r1 of r1, r2
    }
    assert good.score == 52.0  # (75 + 20 + 75 + 40 + 50) / 5
    assert bad.components == {
        "recency": 0.0, "frequency": 5.0, "breadth": 25.0, "trend": 0.0, "activation": 0.0
    }  # fmt: skip
    assert bad.score == 6.0
    assert tenants(clickhouse, HEALTH, AT) == ["acme", "other"]
    # as of a moment before good's last event, that event does not count
    [earlier] = scores(clickhouse, CONFIG, HEALTH, "acme", ago(2.75), account="good")
    assert earlier.components["recency"] == 97.5  # 0.25 days since the event 3 days ago


def test_the_health_api_answers_an_account_and_the_at_risk_list(clickhouse: ClickHouse) -> None:
    load(clickhouse)
    api = create_read_api(clickhouse, CONFIG, {"rk": "acme"}, lambda: True)
    client = TestClient(api, headers={"Authorization": "Bearer rk"})
    one = client.get("/v1/accounts/good/health", params={"at": AT.isoformat()}).json()
    assert (one["score"], one["below_threshold"], one["components"]["trend"]) == (52.0, False, 40.0)
    risky = client.get("/v1/health", params={"below": 40, "at": AT.isoformat()}).json()
    assert [a["account"] for a in risky["accounts"]] == ["bad"] and risky["threshold"] == 40
    every = client.get("/v1/health", params={"at": AT.isoformat()}).json()
    assert [a["account"] for a in every["accounts"]] == ["bad", "good"]
    missing = client.get("/v1/accounts/gone/health", params={"at": AT.isoformat()})
    assert (
        missing.status_code == 404
        and "used no feature in the last 30 days" in missing.json()["detail"]
    )
    unconfigured = create_read_api(clickhouse, parse_config({}), {"rk": "acme"}, lambda: True)
    answer = TestClient(unconfigured, headers={"Authorization": "Bearer rk"}).get("/v1/health")
    assert answer.status_code == 404 and "[health]" in answer.json()["detail"]
