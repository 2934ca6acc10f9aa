"""Activation end to end: collector → Kafka → faust agent and tables → topic and ClickHouse."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from kafka import KafkaConsumer

from processors.activation.rules import outcome_id
from tests.conftest import Corner
from tests.harness import Service, basic, bearer, http, wait_until

pytestmark = pytest.mark.integration

RULES = """
[features]
exclude_events = ["signed_up"]

[activation]
lateness = "1h"

[[activation.rules]]
name = "aha"
subject = "user"
start = "signed_up"
window = "7d"
all_of = [{ event = "report_created", times = 3 }, { event = "teammate_invited" }]

[[activation.rules]]
name = "team"
subject = "account"
start = "signed_up"
window = "14d"
all_of = [{ event = "report_created", distinct_users = 3 }]
"""
DAY = timedelta(days=1)
T0 = (datetime.now(UTC) - timedelta(days=90)).replace(hour=9, minute=0, second=0, microsecond=0)


def track(name: str, user: str, account: str, when: datetime, **fields: Any) -> dict[str, Any]:
    when = when.replace(microsecond=when.microsecond // 1000 * 1000)  # time is kept to the ms
    return {"type": "track", "messageId": fields.pop("messageId", None) or str(uuid.uuid4()),
            "userId": user, "groupId": account, "event": name,
            "timestamp": when.isoformat(), **fields}  # fmt: skip


def worker_with_rules(corner: Corner) -> Service:
    config = corner.home / "rules.toml"
    config.write_text(RULES)
    return corner.service("worker", USAGE_STREAM_CONFIG_FILE=str(config))


def post(collector: Service, corner: Corner, events: list[dict[str, Any]]) -> None:
    status, body = http("POST", f"{collector.url}/v1/batch", {"batch": events},
                        basic(corner.write_key))  # fmt: skip
    assert status == 200, body


def topic_records(corner: Corner) -> list[dict[str, Any]]:
    """Every record on the corner's `activations` topic, from the start."""
    consumer = KafkaConsumer(
        corner.env["USAGE_STREAM_ACTIVATIONS_TOPIC"],
        bootstrap_servers=corner.env["USAGE_STREAM_KAFKA_BOOTSTRAP"],
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=3000,
    )
    try:
        records = []
        for message in consumer:
            record = json.loads(message.value)
            assert message.key == record["id"].encode()
            records.append(record)
        return records
    finally:
        consumer.close()


def api(worker: Service, key: str, path: str, **params: Any) -> Any:
    status, body = http("GET", f"{worker.url}{path}?{urlencode(params, doseq=True)}", None,
                        bearer(key))  # fmt: skip
    assert status == 200, body
    return body


@dataclass(frozen=True)
class Expected:
    type: str
    activated_at: datetime | None = None
    started_at: datetime | None = None


def at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def check(records: list[dict[str, Any]], expected: dict[str, Expected]) -> None:
    """Exactly one record per expected outcome, each with the expected verdict and times."""
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "an outcome was emitted twice"
    assert set(ids) == set(expected), set(ids) ^ set(expected)
    for r in records:
        want = expected[r["id"]]
        assert r["type"] == want.type, r
        assert at(r["activated_at"]) == want.activated_at, r
        if want.started_at is not None:
            assert at(r["started_at"]) == want.started_at, r
        if want.activated_at is not None and want.started_at is not None:
            ttv = (want.activated_at - want.started_at).total_seconds()
            assert r["time_to_value_seconds"] == pytest.approx(ttv), r


@pytest.mark.timeout(300)
def test_verdicts_out_of_order_copies_and_counters_through_the_stack(
    corner: Corner, collector: Service
) -> None:
    worker = worker_with_rules(corner).start()
    try:
        u1 = [
            track("signed_up", "u1", "acct-a", T0),
            *[track("report_created", "u1", "acct-a", T0 + d) for d in (DAY, 2 * DAY, 2.1 * DAY)],
            track("teammate_invited", "u1", "acct-a", T0 + 3 * DAY + timedelta(hours=1)),
        ]
        u2 = [
            track("signed_up", "u2", "acct-a", T0),
            track("report_created", "u2", "acct-a", T0 + 1.5 * DAY),
        ]
        copy = track("report_created", "u4", "acct-a", T0 + 1.7 * DAY)
        u4 = [
            track("signed_up", "u4", "acct-a", T0),
            copy,
            dict(copy),
            dict(copy),
            track("teammate_invited", "u4", "acct-a", T0 + 2 * DAY),
        ]  # one report, sent 3 times
        team = [
            track("signed_up", "t1", "acct-team", T0),
            *[track("report_created", "t1", "acct-team", T0 + DAY) for _ in range(2)],
            track("report_created", "t2", "acct-team", T0 + 2 * DAY),
            track("report_created", "t3", "acct-team", T0 + 4 * DAY),
        ]
        solo = [
            track("signed_up", "s1", "acct-solo", T0),
            *[track("report_created", "s1", "acct-solo", T0 + h * DAY) for h in range(1, 6)],
        ]
        in_order = sorted(u1 + u2 + u4 + team + solo, key=lambda e: e["timestamp"])
        # u3's events arrive newest first: the signup, which completes the evidence, comes last
        u3 = [track("teammate_invited", "u3", "acct-a", T0 + 2 * DAY),
              *[track("report_created", "u3", "acct-a", T0 + d * DAY) for d in (1.5, 1.2, 1.1)],
              track("signed_up", "u3", "acct-a", T0 + timedelta(hours=1))]  # fmt: skip
        for i in range(0, len(in_order), 7):
            post(collector, corner, in_order[i : i + 7])
        for e in u3:
            post(collector, corner, [e])
        # every account's partition moves past every window's end (+ lateness)
        closers = [track("dashboard_viewed", "closer", a, T0 + 20 * DAY)
                   for a in ("acct-a", "acct-team", "acct-solo")]  # fmt: skip
        post(collector, corner, closers)

        def aha(user: str, account: str = "acct-a") -> str:
            return outcome_id(corner.tenant, "aha", account, user)

        def team_of(account: str) -> str:
            return outcome_id(corner.tenant, "team", account, "")

        # team rule on acct-a: the report that brings the third distinct user, in event time,
        # among the reports read when it happened (u3's came after the others)
        seen: set[str] = set()
        third = None
        for e in sorted(u1 + u2 + u4, key=lambda e: e["timestamp"]):
            if e["event"] == "report_created" and third is None:
                seen.add(e["userId"])
                third = datetime.fromisoformat(e["timestamp"]) if len(seen) == 3 else None
        expected = {
            aha("u1"): Expected("activation", T0 + 3 * DAY + timedelta(hours=1), T0),
            aha("u2"): Expected("activation_missed", None, T0),
            aha("u3"): Expected("activation", T0 + 2 * DAY, T0 + timedelta(hours=1)),
            aha("u4"): Expected("activation_missed", None, T0),  # copies count once
            aha("t1", "acct-team"): Expected("activation_missed", None, T0),
            aha("s1", "acct-solo"): Expected("activation_missed", None, T0),
            team_of("acct-a"): Expected("activation", third, T0),
            team_of("acct-team"): Expected("activation", T0 + 4 * DAY, T0),
            team_of("acct-solo"): Expected("activation_missed", None, T0),
        }
        records = wait_until(lambda: (r := topic_records(corner)) and len(r) >= 9 and r, 90)
        check(records, expected)
        [invite] = [r for r in records if r["id"] == aha("u1")]
        assert invite["qualifying_message_id"] == u1[-1]["messageId"]
        assert invite["time_to_value_seconds"] == (3 * DAY + timedelta(hours=1)).total_seconds()

        stored = wait_until(
            lambda: len(a := api(worker, corner.read_key, "/v1/activations", limit=100)) >= 9 and a
        )
        check(stored, expected)
        cohorts = api(worker, corner.read_key, "/v1/activations/cohorts", rule="aha", cohort="day")
        [day] = cohorts["data"]
        assert (day["cohort"], day["subjects"], day["activated"], day["missed"]) == (
            T0.date().isoformat(), 6, 2, 4)  # fmt: skip
        ttvs = sorted([(3 * DAY + timedelta(hours=1)).total_seconds(),
                       (2 * DAY - timedelta(hours=1)).total_seconds()])  # fmt: skip
        assert day["time_to_value_median_seconds"] == pytest.approx(sum(ttvs) / 2)

        # counters: per account and feature, each event once (u4's copy too)
        unique = {e["messageId"]: e for e in in_order + u3 + closers}.values()
        want: dict[tuple[str, str], int] = defaultdict(int)
        for e in unique:
            if e["event"] != "signed_up":
                want[(e["groupId"], e["event"])] += 1
        window = {"from": (T0 - DAY).isoformat(), "to": (T0 + 30 * DAY).isoformat()}
        rows = api(worker, corner.read_key, "/v1/features/usage", **window)
        assert {(r["account"], r["feature"]): r["events"] for r in rows} == want

        # another tenant's read key sees none of it
        other = f"rk_other_{corner.read_key[3:]}"
        assert api(worker, other, "/v1/activations") == []
        assert api(worker, other, "/v1/features/usage", **window) == []
        # a second look, later: still exactly one record per outcome
        check(topic_records(corner), expected)
    finally:
        worker.stop()


def reference(events: list[dict[str, Any]]) -> dict[str, Expected]:
    """The verdicts of RULES for a stream sent in event-time order, computed directly."""
    by_user: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        by_user[(e["groupId"], e["userId"])].append(e)
        by_account[e["groupId"]].append(e)
    out: dict[str, Expected] = {}
    for (account, user), mine in by_user.items():
        starts = [at(e["timestamp"]) for e in mine if e["event"] == "signed_up"]
        if not starts:
            continue
        start = min(s for s in starts if s is not None)
        inside = [e for e in mine if start <= at(e["timestamp"]) <= start + 7 * DAY]
        reports = sorted(at(e["timestamp"]) for e in inside if e["event"] == "report_created")
        invites = sorted(at(e["timestamp"]) for e in inside if e["event"] == "teammate_invited")
        done = max(reports[2], invites[0]) if len(reports) >= 3 and invites else None
        out[outcome_id("acme", "aha", account, user)] = Expected(
            "activation" if done else "activation_missed", done, start
        )
    for account, mine in by_account.items():
        starts = [at(e["timestamp"]) for e in mine if e["event"] == "signed_up"]
        if not starts:
            continue
        start = min(s for s in starts if s is not None)
        users: set[str] = set()
        done = None
        for e in sorted(mine, key=lambda e: e["timestamp"]):
            when = at(e["timestamp"])
            if e["event"] == "report_created" and start <= when <= start + 14 * DAY:
                users.add(e["userId"])
                if len(users) == 3:
                    done = when
                    break
        out[outcome_id("acme", "team", account, "")] = Expected(
            "activation" if done else "activation_missed", done, start
        )
    return out


def signups_and_evidence(
    rng: random.Random, users: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Users signing up two hours apart in 12 accounts, each with some reports and maybe an
    invite over 9 days, in event-time order; and one late event per account to close windows."""
    events = []
    for i in range(users):
        account, user = f"acct-{i % 12}", f"user-{i}"
        signup = T0 + timedelta(hours=2 * i + rng.uniform(0, 1))
        events.append(track("signed_up", user, account, signup))
        for _ in range(rng.randint(0, 5)):
            events.append(track("report_created", user, account, signup + rng.uniform(0, 9) * DAY))
        if rng.random() < 0.7:
            events.append(track("teammate_invited", user, account,
                                signup + rng.uniform(0, 9) * DAY))  # fmt: skip
    events.sort(key=lambda e: e["timestamp"])
    closers = [track("dashboard_viewed", "closer", f"acct-{a}", T0 + 40 * DAY) for a in range(12)]
    return events, closers


@pytest.mark.timeout(600)
def test_a_worker_killed_mid_stream_loses_and_repeats_no_activation(
    corner: Corner, collector: Service
) -> None:
    events, closers = signups_and_evidence(random.Random(7), 60)
    expected = reference(events)
    assert 20 < sum(e.type == "activation" for e in expected.values()) < len(expected) - 20

    chunks = [events[i : i + 25] for i in range(0, len(events), 25)] + [closers]
    service = worker_with_rules(corner)
    service.start()
    sent = 0
    for chunk in chunks[: len(chunks) // 3]:
        post(collector, corner, chunk)
        sent += 1
    wait_until(lambda: topic_records(corner), 60)  # it is deciding: kill it mid-stream
    service.kill()
    for chunk in chunks[sent : 2 * len(chunks) // 3]:  # Kafka keeps them while it is down
        post(collector, corner, chunk)
        sent += 1
    service.start()
    post(collector, corner, chunks[sent])
    sent += 1
    service.kill()  # right away, while it works through the backlog
    service.start()
    try:
        for chunk in chunks[sent:]:
            post(collector, corner, chunk)
        records = wait_until(
            lambda: (r := topic_records(corner)) and len(r) >= len(expected) and r, 180
        )
        check(records, expected)
        stored = wait_until(
            lambda: (len(a := api(service, corner.read_key, "/v1/activations", limit=10000))
                     >= len(expected)) and a, 60)  # fmt: skip
        check(stored, expected)
        check(topic_records(corner), expected)  # and nothing more arrived meanwhile
    finally:
        service.stop()


@pytest.mark.timeout(600)
def test_state_moves_with_its_partitions_when_workers_join_and_leave(
    corner: Corner, collector: Service
) -> None:
    events, closers = signups_and_evidence(random.Random(8), 48)
    expected = reference(events)
    half = len(events) // 2
    first = worker_with_rules(corner).start()
    # a second worker of the same group, with a data directory of its own (faust's tables) and
    # the same ClickHouse server; the topic is where both publish
    second = corner.service("worker", USAGE_STREAM_DATA_DIR=str(corner.home / "second"),
                           USAGE_STREAM_CONFIG_FILE=str(corner.home / "rules.toml"))  # fmt: skip
    try:
        for i in range(0, half, 25):
            post(collector, corner, events[i : min(i + 25, half)])
        wait_until(lambda: topic_records(corner), 60)
        second.start()  # a rebalance: some partitions, and their table state, move to it
        for i in range(half, len(events), 25):
            post(collector, corner, events[i : i + 25])
        post(collector, corner, closers)
        wait_until(lambda: len(topic_records(corner)) >= len(expected), 240)
        check(topic_records(corner), expected)
        # the second worker decided subjects whose windows opened before it joined: their
        # state came to it through the changelogs (a lost state would give other verdicts)
        decided = api(second, corner.read_key, "/v1/activations", limit=10000)
        early = {at(e["timestamp"]) for e in events[:half] if e["event"] == "signed_up"}
        assert any(at(r["started_at"]) in early for r in decided), decided
        first.stop()  # and back: the second takes every partition and restores their state
        late = [track("dashboard_viewed", "closer", f"acct-{a}", T0 + 41 * DAY) for a in range(12)]
        post(collector, corner, late)
        ids = [e["messageId"] for e in late]
        wait_until(
            lambda: len(api(second, corner.read_key, "/v1/events", message_id=ids)) == 12, 90
        )
        check(topic_records(corner), expected)
    finally:
        second.stop()
        first.stop()


@pytest.mark.timeout(300)
def test_events_committed_past_without_being_handed_over_still_count(
    corner: Corner, collector: Service
) -> None:
    """faust can commit an offset whose message an agent never saw (see fill_gaps); here the
    group's offset is moved past the events that complete the criteria, by hand."""
    from kafka import KafkaProducer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    from schemas import EnrichedEvent

    bootstrap, topic = (
        corner.env["USAGE_STREAM_KAFKA_BOOTSTRAP"],
        corner.env["USAGE_STREAM_EVENTS_TOPIC"],
    )
    service = worker_with_rules(corner).start()
    try:
        opening = [track("signed_up", "gap-user", "acct-gap", T0),
                   track("report_created", "gap-user", "acct-gap", T0 + DAY)]  # fmt: skip
        post(collector, corner, opening)
        wait_until(
            lambda: api(service, corner.read_key, "/v1/activations/cohorts", rule="aha")["data"]
        )
    finally:
        service.stop()

    def event(name: str, when: datetime) -> EnrichedEvent:
        e = track(name, "gap-user", "acct-gap", when)
        return EnrichedEvent.model_validate({**e, "tenant": corner.tenant, "account": "acct-gap",
                                             "receivedAt": when.isoformat()})  # fmt: skip

    hidden = [event("report_created", T0 + 2 * DAY), event("report_created", T0 + 3 * DAY),
              event("teammate_invited", T0 + 3 * DAY + timedelta(hours=2))]  # fmt: skip
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    sent = [producer.send(topic, key=e.partition_key.encode(), value=e.to_kafka()).get(30)
            for e in hidden]  # fmt: skip
    producer.close()
    partition = sent[0].partition
    group = corner.env["USAGE_STREAM_CONSUMER_GROUP"]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    consumer.commit(
        {TopicPartition(topic, partition): OffsetAndMetadata(sent[-1].offset + 1, "", -1)}
    )
    consumer.close()

    service.start()
    try:
        post(collector, corner, [track("dashboard_viewed", "gap-user", "acct-gap", T0 + 4 * DAY)])
        [record] = wait_until(
            lambda: [r for r in topic_records(corner) if r["user_id"] == "gap-user"], 60
        )
        assert record["type"] == "activation"
        assert at(record["activated_at"]) == T0 + 3 * DAY + timedelta(hours=2)
    finally:
        service.stop()
