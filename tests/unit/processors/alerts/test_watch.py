"""The alert watch on the metering fold's rows, in memory: crossings on the batch that makes
them, a failed send retried, a plan change, a final period left alone, and what a restart
reads back firing nothing twice and nothing missed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.alerts.crossings import Kind, Place, crossing_id
from processors.alerts.recovery import Loaded, states_from
from processors.alerts.sinks import InMemoryAlerts
from processors.alerts.watch import AlertWatch
from processors.metering.fold import fold_deliveries
from processors.model import Delivery
from schemas import EnrichedEvent
from schemas.config import ProductConfig, parse_config

NOW = datetime(2026, 12, 8, 12, 0, tzinfo=UTC)
CONFIG = parse_config(
    {
        "billing": {"timezone": "America/New_York", "grace_hours": 72},
        "meters": [
            {"name": "api_calls", "event": "api_call", "aggregation": "count"},
            {"name": "seats", "event": "seat_added", "removed_event": "seat_removed",
             "aggregation": "seats", "per": "day"},
        ],
        "plans": [
            {"name": "free", "default": True, "included": {"api_calls": 10, "seats": 1},
             "thresholds": [{"meter": "api_calls", "percent": 80},
                            {"meter": "api_calls", "percent": 100},
                            {"meter": "seats", "quantity": 2}]},
            {"name": "pro", "included": {"api_calls": 100},
             "thresholds": [{"meter": "api_calls", "percent": 80},
                            {"meter": "api_calls", "percent": 100}]},
        ],
    }
)  # fmt: skip
_n = 0


def event(
    name: str,
    when: datetime,
    kind: str = "track",
    received: datetime = NOW,
    account: str = "acct-1",
    **traits: Any,
) -> Delivery:
    global _n
    _n += 1
    return Delivery(
        EnrichedEvent(
            tenant="acme", type=kind, message_id=f"m{_n}", event=name if kind == "track" else "",
            account=account, user_id="u-1", traits=traits, timestamp=when, received_at=received,
        ),
        0,
        _n,
    )  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


def batch(watch: AlertWatch, deliveries: list[Delivery], config: ProductConfig = CONFIG) -> None:
    watch.before(deliveries)
    watch.after(deliveries, fold_deliveries(config, deliveries))


def calls(
    n: int,
    when: datetime = NOW - timedelta(hours=1),
    received: datetime = NOW,
    account: str = "acct-1",
) -> list[Delivery]:
    return [event("api_call", when, received=received, account=account) for _ in range(n)]


def fired(alerts: InMemoryAlerts) -> list[tuple[str, str, str]]:
    return [(r["kind"], r["meter"], r["threshold"]) for r in alerts.sent]


def test_thresholds_fire_on_the_batch_that_crosses_them() -> None:
    alerts = InMemoryAlerts()
    watch = AlertWatch(CONFIG, alerts, alerts, clock=Clock())
    batch(watch, calls(7))
    assert alerts.sent == []
    batch(watch, calls(2))
    assert fired(alerts) == [("fired", "api_calls", "80%")]
    batch(watch, calls(5))
    assert fired(alerts)[1:] == [("fired", "api_calls", "100%")]
    record = alerts.sent[-1]
    assert (record["quantity"], record["level"], record["included"]) == ("14", "10", "10")
    assert record["period"] == "2026-12" and record["plan"] == "free" and not record["late"]
    assert alerts.stored == alerts.sent  # stored once Kafka held them


def test_a_send_that_fails_is_retried_with_the_same_records() -> None:
    alerts = InMemoryAlerts()
    watch = AlertWatch(CONFIG, alerts, alerts, clock=Clock())
    alerts.fail = True
    with pytest.raises(ConnectionError):
        batch(watch, calls(9))
    assert alerts.sent == []
    # the retry: the rows are written, nothing new to fold, the crossing still owed
    batch(watch, [])
    assert fired(alerts) == [("fired", "api_calls", "80%")]


def test_a_plan_change_re_evaluates_at_once() -> None:
    alerts = InMemoryAlerts()
    watch = AlertWatch(CONFIG, alerts, alerts, clock=Clock())
    batch(watch, calls(12))
    assert [r["threshold"] for r in alerts.sent] == ["80%", "100%"]
    batch(watch, [event("", NOW - timedelta(minutes=30), kind="group", plan="pro")])
    assert [(r["kind"], r["plan"]) for r in alerts.sent[2:]] == [("resolved", "pro")] * 2
    assert alerts.plans and alerts.plans[0][3] == "pro"


def test_a_late_event_alerts_in_grace_and_never_for_a_final_period() -> None:
    alerts = InMemoryAlerts()
    clock = Clock()
    clock.now = datetime(2026, 12, 2, 12, tzinfo=UTC)  # November (New York) ends Dec 1 05:00Z
    watch = AlertWatch(CONFIG, alerts, alerts, clock=clock)
    november = datetime(2026, 11, 20, tzinfo=UTC)
    batch(watch, calls(9, november, clock.now))
    assert [(r["period"], r["late"]) for r in alerts.sent] == [("2026-11", True)]
    clock.now = datetime(2026, 12, 6, tzinfo=UTC)  # November final since Dec 4 05:00Z
    batch(watch, calls(5, november, clock.now))
    assert len(alerts.sent) == 1


def test_held_seats_cross_as_they_are_held() -> None:
    alerts = InMemoryAlerts()
    clock = Clock()
    clock.now = datetime(2026, 12, 1, 5, tzinfo=UTC)  # the period's start in New York
    watch = AlertWatch(CONFIG, alerts, alerts, clock=clock)
    batch(watch, [event("seat_added", clock.now)])
    assert alerts.sent == []
    clock.now += timedelta(days=2, minutes=1)  # past 2 seat-days: the next batch sees it
    batch(watch, [])
    assert fired(alerts) == [("fired", "seats", "2")]


def test_a_restart_reads_back_what_was_sent_and_fires_what_was_not() -> None:
    alerts = InMemoryAlerts()
    watch = AlertWatch(CONFIG, alerts, alerts, clock=Clock())
    deliveries = calls(9)
    batch(watch, deliveries)
    (sent,) = alerts.sent
    partials = list(fold_deliveries(CONFIG, deliveries).items())
    columns = ("tenant", "account", "meter", "period", "threshold", "generation", "kind",
               "tier_entered")  # fmt: skip
    stored = [tuple(r[c] for c in columns) for r in alerts.sent]

    def restarted(records: list[tuple[Any, ...]]) -> InMemoryAlerts:
        again = InMemoryAlerts()
        loaded = Loaded(partials=partials, states=states_from(records))
        watch = AlertWatch(
            CONFIG, again, again, load=lambda parts: loaded, assigned=lambda: {0}, clock=Clock()
        )
        batch(watch, [])
        return again

    assert restarted(stored).sent == []  # sent before the crash: not again
    (again,) = restarted([]).sent  # killed before the send: sent now, with the same id
    assert again["id"] == sent["id"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from(["acct-1", "acct-2", "acct-3"]),
                           st.integers(min_value=0, max_value=6)), max_size=4),
        min_size=1, max_size=12,
    )
)  # fmt: skip
def test_the_records_of_a_stream_are_its_running_totals_crossing_each_level(
    batches: list[list[tuple[str, int]]],
) -> None:
    """Count meters only grow: the records of any stream of batches are, per account, each
    level fired once, on the first batch whose running total reaches it, in ascending order,
    with the ids that place makes; a second watch fed the same stream sends the same."""

    def run() -> list[dict[str, Any]]:
        alerts = InMemoryAlerts()
        watch = AlertWatch(CONFIG, alerts, alerts, clock=Clock())
        for number, batch_ in enumerate(batches):
            sent = len(alerts.sent)
            batch(watch, [d for account, n in batch_ for d in calls(n, account=account)])
            for record in alerts.sent[sent:]:
                record["batch"] = number
        return alerts.sent

    totals: dict[str, int] = {}
    expected = []
    for number, batch_ in enumerate(batches):
        before = dict(totals)
        for account, n in batch_:
            totals[account] = totals.get(account, 0) + n
        for account in sorted(totals):
            for key, level in (("80%", 8), ("100%", 10)):
                if before.get(account, 0) < level <= totals[account]:
                    place = Place("acme", account, "api_calls", "2026-12")
                    expected.append((number, account, key, crossing_id(place, key, 0, Kind.FIRED)))
    got = run()
    assert sorted((r["batch"], r["account"], r["threshold"], r["id"]) for r in got) == sorted(
        expected
    )
    for account in totals:  # ascending per account
        levels = [Decimal(r["level"]) for r in got if r["account"] == account]
        assert levels == sorted(levels)
    assert [r["id"] for r in run()] == [r["id"] for r in got]
