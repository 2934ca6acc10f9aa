"""Feature counters and the analytics API on the real chDB engine, against known data sets."""

from __future__ import annotations

import random
import statistics
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from processors.activation.engine import ActivationEngine
from processors.activation.store import ClickHouseActivationStore
from processors.api.app import create_read_api
from processors.features.processor import FeatureUsageProcessor
from processors.features.query import usage
from processors.model import Delivery, Event
from processors.storage.clickhouse import ClickHouse
from processors.storage.events import ClickHouseEventStore
from processors.windows import FeatureWindow
from schemas import EnrichedEvent
from schemas.activation import Features
from schemas.config import parse_config
from tests.unit.processors.activation.test_engine import StatesView

pytestmark = pytest.mark.integration

START = datetime(2026, 3, 1, tzinfo=UTC)
FEATURES = Features(exclude_events=["signed_up"])
NAMES = ["report_created", "dashboard_viewed", "export_csv", "teammate_invited"]


def event(when: datetime, name: str, account: str, user: str, tenant: str = "acme",
          **properties: Any) -> Event:  # fmt: skip
    return Event.of(EnrichedEvent(
        tenant=tenant, type="track", message_id=str(uuid.uuid4()), event=name, account=account,
        user_id=user, properties=properties, timestamp=when,
        received_at=when + timedelta(seconds=2),
    ))  # fmt: skip


def deliveries(events: list[Event], partition: int = 0, first: int = 0) -> list[Delivery]:
    return [Delivery(e, partition, first + i) for i, e in enumerate(events)]


def random_usage(rng: random.Random, n: int, tenant: str = "acme") -> list[Event]:
    return [
        event(START + timedelta(seconds=rng.uniform(0, 10 * 86400)), rng.choice(NAMES),
              f"acct-{rng.randint(1, 6)}", f"u-{rng.randint(1, 9)}", tenant)
        for _ in range(n)
    ]  # fmt: skip


def test_counters_are_exact_per_minute_hour_and_day_and_count_once(
    clickhouse: ClickHouse,
) -> None:
    rng = random.Random(1)
    events = random_usage(rng, 800)
    events += [event(START, "signed_up", "acct-1", "u-1"), event(START, "report_created", "", "x")]
    processor = FeatureUsageProcessor(clickhouse, FEATURES)
    stream = deliveries(events, partition=1)
    processor.write(stream[:500])
    processor.write(stream[400:])  # overlapping redelivery after a crash: counted once
    processor.write(stream)

    counted = [e for e in events if e.account and e.event != "signed_up"]
    zone = ZoneInfo("America/New_York")
    for window, cut in (
        (FeatureWindow.MINUTE, lambda t: t.replace(second=0, microsecond=0)),
        (
            FeatureWindow.HOUR,
            lambda t: t.astimezone(zone).replace(minute=0, second=0, microsecond=0),
        ),
        (
            FeatureWindow.DAY,
            lambda t: t.astimezone(zone).replace(hour=0, minute=0, second=0, microsecond=0),
        ),
    ):
        events_of: dict[tuple[Any, ...], int] = defaultdict(int)
        users_of: dict[tuple[Any, ...], set[str]] = defaultdict(set)
        for e in counted:
            key = (cut(e.timestamp).astimezone(UTC), e.account, e.event)
            events_of[key] += 1
            users_of[key].add(e.user_id)
        rows = usage(clickhouse, "acme", START - timedelta(days=1), START + timedelta(days=12),
                     window, "America/New_York")  # fmt: skip
        starts = [datetime.fromisoformat(r.window_start) for r in rows]
        assert {
            (start, r.account, r.feature): r.events for start, r in zip(starts, rows, strict=True)
        } == events_of
        assert {
            (start, r.account, r.feature): r.users for start, r in zip(starts, rows, strict=True)
        } == {k: len(v) for k, v in users_of.items()}
    # distinct users over a whole range are distinct over the range, not a sum per minute
    [total] = usage(clickhouse, "acme", START, START + timedelta(days=12), FeatureWindow.TOTAL,
                    accounts=["acct-2"], features=["dashboard_viewed"])  # fmt: skip
    chosen = [e for e in counted if e.account == "acct-2" and e.event == "dashboard_viewed"]
    assert (total.events, total.users) == (len(chosen), len({e.user_id for e in chosen}))


def client_for(clickhouse: ClickHouse, config_data: dict[str, Any]) -> TestClient:
    config = parse_config(config_data)
    keys = {"rk-acme": "acme", "rk-globex": "globex"}
    return TestClient(create_read_api(clickhouse, config, keys, lambda: True))


def get(client: TestClient, path: str, key: str = "rk-acme", **params: Any) -> Any:
    answer = client.get(path, params=params, headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_adoption_and_breadth_on_a_known_data_set(clickhouse: ClickHouse) -> None:
    rng = random.Random(2)
    acme = random_usage(rng, 600)
    # an account active only through events that are not features: active, adopts nothing
    acme += [event(START + timedelta(days=9), "signed_up", "acct-quiet", "q")]
    globex = random_usage(rng, 200, tenant="globex")
    stream = deliveries(acme + globex)
    kept = ClickHouseEventStore(clickhouse).store(stream)
    FeatureUsageProcessor(clickhouse, FEATURES).write(kept)
    client = client_for(clickhouse, {"features": FEATURES.model_dump()})

    to = START + timedelta(days=10)
    since = to - timedelta(days=7)
    recent = [e for e in acme if since <= e.timestamp < to]
    active = {e.account for e in recent}
    for feature in NAMES:
        using = {e.account for e in recent if e.event == feature}
        body = get(client, f"/v1/features/{feature}/adoption", days=7, to=to.isoformat())
        assert (body["active_accounts"], body["accounts_using"]) == (len(active), len(using))
        assert body["share"] == pytest.approx(len(using) / len(active))

    mine = [e for e in recent if e.account == "acct-3" and e.event != "signed_up"]
    body = get(client, "/v1/accounts/acct-3/features", days=7, to=to.isoformat())
    expected = {}
    for name in {e.event for e in mine}:
        uses = [e for e in mine if e.event == name]
        expected[name] = {
            "feature": name,
            "events": len(uses),
            "users": len({e.user_id for e in uses}),
            "active_days": len({e.timestamp.date() for e in uses}),
            "first_used": min(e.timestamp for e in uses).replace(second=0, microsecond=0),
            "last_used": max(e.timestamp for e in uses).replace(second=0, microsecond=0),
        }
    got = {f["feature"]: {**f, "first_used": datetime.fromisoformat(f["first_used"]),
                          "last_used": datetime.fromisoformat(f["last_used"])}
           for f in body["features"]}  # fmt: skip
    assert got == expected
    known = {e.event for e in recent if e.event != "signed_up"}
    assert (body["features_used"], body["features_known"]) == (len(expected), len(known))
    assert [f["events"] for f in body["features"]] == sorted(
        (f["events"] for f in body["features"]), reverse=True
    )
    # the other tenant's key sees its own accounts only
    globex_recent = {e.account for e in globex if since <= e.timestamp < to}
    body = get(client, "/v1/features/export_csv/adoption", "rk-globex", days=7, to=to.isoformat())
    assert body["active_accounts"] == len(globex_recent)
    assert get(client, "/v1/accounts/acct-quiet/features", "rk-globex", days=7,
               to=to.isoformat())["features"] == []  # fmt: skip


CRITERIA = [{"event": "report_created", "times": 2}, {"event": "teammate_invited"}]
RULE = {"name": "aha", "subject": "user", "start": "signed_up", "window": "7d", "all_of": CRITERIA}


def test_activations_and_cohorts_on_a_known_data_set(clickhouse: ClickHouse) -> None:
    """Users sign up over 3 weeks; some reach the aha moment after a planned time to value,
    some never do; the last ones are still inside their window when the data ends."""
    rng = random.Random(3)
    config = {"activation": {"lateness": "1h", "rules": [RULE]}}
    plans: dict[str, tuple[datetime, timedelta | None]] = {}
    events: list[Event] = []
    for i in range(60):
        user, signup = f"u{i}", START + timedelta(days=rng.uniform(0, 21))
        ttv = timedelta(hours=rng.uniform(1, 160)) if rng.random() < 0.6 else None
        plans[user] = (signup, ttv)
        events.append(event(signup, "signed_up", f"acct-{i % 7}", user))
        events.append(
            event(signup + timedelta(minutes=30), "report_created", f"acct-{i % 7}", user)
        )
        if ttv is not None:  # the second report, then the invite that completes the criteria
            events.append(event(signup + ttv / 2, "report_created", f"acct-{i % 7}", user))
            events.append(event(signup + ttv, "teammate_invited", f"acct-{i % 7}", user))
    events.append(event(START + timedelta(days=24), "dashboard_viewed", "acct-0", "closer"))
    events.append(event(START, "signed_up", "acct-0", "u0", tenant="globex"))
    end = max(e.timestamp for e in events)  # the stream's event time when the data ends
    events.sort(key=lambda e: e.timestamp)

    engine, store = (
        ActivationEngine(parse_config(config).activation),
        ClickHouseActivationStore(clickhouse),
    )
    states: dict[bytes, bytes] = {}
    decided: dict[bytes, bytes] = {}
    stream = deliveries(events)
    for i in range(0, len(stream), 17):
        decisions = engine.process(stream[i : i + 17], StatesView(states), decided)
        store.write(decisions.outcomes, decisions.starts)
        store.write(decisions.outcomes, decisions.starts)  # a retry writes nothing twice
        for o in decisions.outcomes:
            decided[o.key] = o.encode()
        for _, key, value in [*decisions.states, *decisions.clocks]:
            states.pop(key, None) if value is None else states.__setitem__(key, value)
    client = client_for(clickhouse, config)

    def state_of(signup: datetime, ttv: timedelta | None) -> str:
        if ttv is not None and ttv <= timedelta(days=7):
            return "activation"
        return "activation_missed" if signup + timedelta(days=7, hours=1) < end else "pending"

    listed = get(client, "/v1/activations", limit=1000)
    expected = {u: state_of(*plan) for u, plan in plans.items()}
    assert {r["user_id"]: r["type"] for r in listed} == {
        u: s for u, s in expected.items() if s != "pending"
    }
    for r in listed:
        signup, ttv = plans[r["user_id"]]
        assert datetime.fromisoformat(r["started_at"]) == signup.replace(
            microsecond=signup.microsecond // 1000 * 1000
        )
        if r["type"] == "activation":
            assert ttv is not None
            assert r["time_to_value_seconds"] == pytest.approx(ttv.total_seconds(), abs=0.002)
    one = get(client, "/v1/activations", account="acct-3", type="activation")
    assert {r["user_id"] for r in one} == {
        u for u, s in expected.items() if s == "activation" and int(u[1:]) % 7 == 3
    }
    # the other tenant sees none of acme's verdicts; its one user's window is still open, since
    # its own event time has not moved (acme's events on the same partition do not move it)
    assert get(client, "/v1/activations", "rk-globex") == []
    [globex] = get(client, "/v1/activations/cohorts", "rk-globex", rule="aha")["data"]
    assert (globex["subjects"], globex["pending"]) == (1, 1)

    for cohort, cut in (("day", lambda d: d), ("week", lambda d: d - timedelta(d.weekday()))):
        body = get(client, "/v1/activations/cohorts", rule="aha", cohort=cohort)
        groups: dict[date, list[str]] = defaultdict(list)
        for user, (signup, _) in plans.items():
            groups[cut(signup.date())].append(user)
        assert [row["cohort"] for row in body["data"]] == [d.isoformat() for d in sorted(groups)]
        for row in body["data"]:
            users = groups[date.fromisoformat(row["cohort"])]
            states_ = [expected[u] for u in users]
            ttvs = [plans[u][1].total_seconds() for u in users  # type: ignore[union-attr]
                    if expected[u] == "activation"]  # fmt: skip
            assert row["subjects"] == len(users)
            assert (row["activated"], row["missed"], row["pending"]) == (
                states_.count("activation"), states_.count("activation_missed"),
                states_.count("pending"),
            )  # fmt: skip
            assert row["activation_rate"] == pytest.approx(len(ttvs) / len(users))
            if ttvs:
                p90 = statistics.quantiles(ttvs, n=10, method="inclusive")[8] if len(ttvs) > 1 \
                    else ttvs[0]  # fmt: skip
                assert row["time_to_value_median_seconds"] == pytest.approx(
                    statistics.median(ttvs), abs=0.002)  # fmt: skip
                assert row["time_to_value_p90_seconds"] == pytest.approx(p90, abs=0.002)
            else:
                assert row["time_to_value_median_seconds"] is None
    # an unknown rule is one answer on every route that takes a rule (the list once said [])
    for path in ("/v1/activations/cohorts", "/v1/activations"):
        answer = client.get(path, params={"rule": "nope"},
                            headers={"Authorization": "Bearer rk-acme"})  # fmt: skip
        assert answer.status_code == 404, path
        assert "no activation rule named 'nope'" in answer.json()["detail"], path
    assert client.get("/v1/activations").status_code == 401
