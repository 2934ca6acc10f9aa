"""The Python SDK against the real collector and broker: restarts, a full queue, fork, exit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections import Counter
from pathlib import Path

import pytest
from usage_stream_sdk import Client, Failure, FailureKind

from ingest import KafkaTransport
from tests.conftest import Corner
from tests.harness import Service, basic, bearer, http, wait_until
from tests.integration.topic_reader import message_ids, read_topic
from usage_stream.up import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def stored_ids(worker: Service, corner: Corner, ids: list[str]) -> list[str]:
    """The ids the worker's read API holds among `ids`, one entry per stored row."""
    found: list[str] = []
    for start in range(0, len(ids), 50):  # keep the query string short
        query = "&".join(f"message_id={i}" for i in ids[start : start + 50])
        status, rows = http(
            "GET", f"{worker.url}/v1/events?{query}&limit=10000", None, bearer(corner.read_key)
        )
        assert status == 200, rows
        found.extend(row["message_id"] for row in rows)
    return found


def events_topic(corner: Corner) -> tuple[str, str]:
    return corner.env["USAGE_STREAM_KAFKA_BOOTSTRAP"], corner.env["USAGE_STREAM_EVENTS_TOPIC"]


def test_every_event_arrives_once_across_a_collector_restart(
    corner: Corner, worker: Service, collector: Service
) -> None:
    client = Client(corner.write_key, collector.url, flush_at=10, flush_interval=0.1)
    try:
        ids = [client.track("user-1", "api_call", {"n": i}).message_id for i in range(20)]
        assert client.flush(timeout=60)
        collector.stop()
        receipts = [client.track("user-1", "api_call", {"n": i}) for i in range(20, 50)]
        assert all(receipts)  # queued while nothing listens
        wait_until(lambda: client.stats.retries >= 1, 60)
        collector.start()
        assert client.flush(timeout=240)
        ids += [r.message_id for r in receipts]
        stats = client.stats
        assert (stats.delivered, stats.failed, stats.dropped, stats.rejected) == (50, 0, 0, 0)
    finally:
        client.shutdown(timeout=5)
    stored = wait_until(lambda: len(found := stored_ids(worker, corner, ids)) >= 50 and found, 90)
    assert Counter(stored) == Counter(ids)  # every one, none twice


def test_a_full_queue_is_observable_and_only_what_was_refused_is_missing(
    corner: Corner, collector: Service
) -> None:
    collector.stop()  # nothing drains the queue
    failures: list[Failure] = []
    client = Client(
        corner.write_key, collector.url, max_queue_size=5, flush_at=5, on_error=failures.append
    )
    try:
        receipts = [client.track("user-1", "api_call", {"n": i}) for i in range(30)]
        queued = [r.message_id for r in receipts if r]
        refused = [r.message_id for r in receipts if not r]
        assert refused and queued
        assert all("queue is full" in (r.error or "") for r in receipts if not r)
        assert client.stats.dropped == len(refused)
        assert [f.kind for f in failures] == [FailureKind.QUEUE_FULL] * len(refused)
        assert [f.messages[0]["messageId"] for f in failures] == refused
        collector.start()
        assert client.flush(timeout=240)
        assert client.stats.delivered == len(queued)
    finally:
        client.shutdown(timeout=5)
    landed = set(message_ids(*events_topic(corner)))
    assert set(queued) <= landed
    assert not set(refused) & landed


def run_script(body: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body), *args],
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang guard, not a speed check
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )


FORK = """
    import dataclasses, json, os, sys
    from usage_stream_sdk import Client

    client = Client(sys.argv[1], sys.argv[2], flush_interval=0.05)
    before = client.track("user-1", "before_fork").message_id  # the sender thread is running
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        ids = [client.track("user-1", "in_child", {"n": i}).message_id for i in range(5)]
        report = {"ids": ids, "flushed": client.flush(60),
                  "stats": dataclasses.asdict(client.stats)}
        os.write(write_end, json.dumps(report).encode())
        os._exit(0)
    os.close(write_end)
    after = [client.track("user-1", "after_fork", {"n": i}).message_id for i in range(5)]
    with os.fdopen(read_end) as pipe:
        child = json.loads(pipe.read())
    os.waitpid(pid, 0)
    print(json.dumps({"before": before, "after": after, "child": child,
                      "flushed": client.flush(60), "stats": dataclasses.asdict(client.stats)}))
"""


def test_after_fork_parent_and_child_each_deliver_their_own_events(
    corner: Corner, collector: Service
) -> None:
    done = run_script(FORK, corner.write_key, collector.url)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    child = report["child"]
    assert child["flushed"] and report["flushed"]
    # the child's client is its own: it sends its five and nothing the parent had queued
    assert child["stats"]["queued"] == 5 and child["stats"]["delivered"] == 5
    assert report["stats"]["delivered"] == 6
    landed = Counter(message_ids(*events_topic(corner)))
    for message_id in [report["before"], *report["after"], *child["ids"]]:
        assert landed[message_id] >= 1, message_id


EXIT = """
    import sys
    from usage_stream_sdk import Client

    def lost(failure):
        print(f"LOST {failure.kind.value} {len(failure.messages)}", file=sys.stderr, flush=True)

    # a long interval: nothing is sent before the process ends, unless the exit hook sends it
    client = Client(sys.argv[1], sys.argv[2], flush_interval=3600,
                    shutdown_timeout=float(sys.argv[3]), on_error=lost)
    for i in range(10):
        print(client.track("user-1", "short_lived", {"n": i}).message_id)
"""


def test_a_short_lived_process_sends_its_events_at_exit(corner: Corner, collector: Service) -> None:
    done = run_script(EXIT, corner.write_key, collector.url, "30")
    assert done.returncode == 0, done.stderr
    ids = done.stdout.split()
    assert len(ids) == 10
    assert "LOST" not in done.stderr
    landed = set(message_ids(*events_topic(corner)))
    assert set(ids) <= landed


def test_at_exit_with_the_collector_down_the_loss_is_reported_not_silent(corner: Corner) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    done = run_script(EXIT, corner.write_key, nowhere, "1")
    assert done.returncode == 0, done.stderr
    lost = [line.split() for line in done.stderr.splitlines() if line.startswith("LOST")]
    assert lost and all(kind == "abandoned" for _, kind, _ in lost)
    assert sum(int(n) for _, _, n in lost) == 10
    assert "not delivered (abandoned)" in done.stderr  # and logged


def test_a_mixed_batch_stores_the_valid_events_and_parks_the_rest_with_reasons(
    corner: Corner, worker: Service, collector: Service
) -> None:
    # over raw HTTP, as any Segment-style sender
    valid = {"type": "track", "messageId": str(uuid.uuid4()), "userId": "user-1",
             "event": "api_call"}  # fmt: skip
    no_name = {"type": "track", "messageId": str(uuid.uuid4()), "userId": "user-1"}
    status, answer = http(
        "POST", f"{collector.url}/v1/batch", {"batch": [valid, no_name]}, basic(corner.write_key)
    )
    assert status == 200 and answer["accepted"] == 1
    (rejected,) = answer["rejected"]
    assert rejected["index"] == 1 and rejected["messageId"] == no_name["messageId"]
    assert rejected["errors"] == [{"field": "batch.1.track.event", "message": "Field required"}]
    # through the SDK: a lone surrogate (a badly decoded file name, say) is valid JSON but cannot
    # be stored; the collector rejects that event alone and the SDK reports it
    failures: list[Failure] = []
    client = Client(corner.write_key, collector.url, flush_interval=60, on_error=failures.append)
    try:
        good = [client.track("user-1", "upload", {"file": f"a{i}.csv"}).message_id for i in (1, 2)]
        bad = client.track("user-1", "upload", {"file": "b\udcff.csv"}).message_id
        # and one that breaks the contract: the failure names the field, as the collector did
        unnamed = client.track("user-1", 42).message_id  # type: ignore[arg-type]
        assert client.flush(timeout=60)
    finally:
        client.shutdown(timeout=5)
    assert client.stats.delivered == 2 and client.stats.rejected == 2
    failure, broken = failures
    assert failure.kind is FailureKind.REJECTED and "UTF-8" in failure.reason
    assert failure.messages[0]["messageId"] == bad
    assert broken.messages[0]["messageId"] == unnamed
    assert [e.field.split(".")[-2:] for e in broken.errors] == [["track", "event"]]
    assert "track.event" in broken.reason
    expected = sorted([valid["messageId"], *good])
    wait_until(lambda: sorted(stored_ids(worker, corner, expected)) == expected, 60)
    parked = [
        r
        for r in read_topic(
            corner.env["USAGE_STREAM_KAFKA_BOOTSTRAP"], corner.env["USAGE_STREAM_INVALID_TOPIC"]
        )
        if dict(r.headers).get("source") == b"collector"
    ]
    assert [json.loads(r.value)["messageId"] for r in parked] == [no_name["messageId"], bad,
                                                                 unnamed]  # fmt: skip
    assert all(dict(r.headers)["tenant"] == corner.tenant.encode() for r in parked)
    assert b"Field required" in dict(parked[0].headers)["errors"]
    assert b"UTF-8" in dict(parked[1].headers)["reason"]


def test_the_kafka_transport_produces_like_the_collector(corner: Corner) -> None:
    bootstrap, topic = events_topic(corner)
    invalid_topic = corner.env["USAGE_STREAM_INVALID_TOPIC"]
    transport = KafkaTransport(bootstrap, corner.tenant, topic=topic, invalid_topic=invalid_topic)
    failures: list[Failure] = []
    client = Client(transport=transport, flush_interval=0.05, on_error=failures.append)
    try:
        ids = [client.track("user-1", "api_call", {"n": i}, group_id="acct-1").message_id
               for i in range(5)]  # fmt: skip
        bad = client.track("user-1", "upload", {"file": "b\udcff.csv"}).message_id
        assert client.flush(timeout=60)
    finally:
        client.shutdown(timeout=5)
    assert client.stats.delivered == 5 and client.stats.rejected == 1
    assert failures[0].messages[0]["messageId"] == bad
    records = {json.loads(r.value)["messageId"]: r for r in read_topic(bootstrap, topic)}
    assert set(ids) <= set(records)
    record = records[ids[0]]
    assert record.key == f"{corner.tenant}:acct-1".encode()  # the collector's partitioning
    assert json.loads(record.value)["tenant"] == corner.tenant
    parked = [json.loads(r.value)["messageId"] for r in read_topic(bootstrap, invalid_topic)]
    assert parked == [bad]
