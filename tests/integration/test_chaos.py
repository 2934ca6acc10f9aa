"""Chaos: under steady load from concurrent senders, SIGKILL and restart the broker once, the
collector once and the worker three times. Afterwards every accepted event is stored once and
metered once (`usage-stream reconcile` exits 0), every sender's retried requests succeeded, and
ingestion resumed within 15 s of each restart.

"Resumed" is measured by a probe posting one event every 0.2 s beside the SDK senders: after a
broker or collector restart, the first event the collector accepts again; after a worker
restart, the first new event stored. The figures are printed (`pytest -s`).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from usage_stream_sdk import Client
from usage_stream_sdk.retry import Backoff

from tests.conftest import Corner
from tests.harness import Service, basic, bearer, http, wait_until
from tests.integration.test_sdk_broker_restart import collector_on, kill
from tests.integration.test_sdk_delivery import stored_ids
from usage_stream.broker import LocalBroker

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]
SENDERS = 4
RESUME_SECONDS = 15.0
# a sender that retries soon after an outage: what is measured is the stack, not the backoff
EAGER = Backoff(base=0.2, cap=2.0)


@dataclass
class Probe:
    """One event every 0.2 s straight to the collector: when was each one accepted?"""

    collector: Service
    write_key: str
    accepted: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.wait(0.2):
            message_id = str(uuid.uuid4())
            event = {"type": "track", "messageId": message_id, "userId": "probe",
                     "groupId": "acct-probe", "event": "api_call"}  # fmt: skip
            try:
                status, _ = http("POST", f"{self.collector.url}/v1/batch", {"batch": [event]},
                                 basic(self.write_key))  # fmt: skip
            except OSError:
                continue
            if status == 200:
                self.accepted.append((time.monotonic(), message_id))

    def accepted_since(self, moment: float) -> bool:
        return any(t > moment for t, _ in self.accepted[-20:])


def stored_count(worker: Service, corner: Corner) -> int:
    try:
        status, counts = http("GET", f"{worker.url}/v1/events/counts", None,
                              bearer(corner.read_key))  # fmt: skip
    except OSError:
        return -1
    return sum(c["events"] for c in counts) if status == 200 else -1


def seconds_until(check: object, timeout: float) -> float:
    started = time.monotonic()
    wait_until(check, timeout, interval=0.1)
    return time.monotonic() - started


def test_kills_of_every_part_lose_nothing_and_count_nothing_twice(
    corner: Corner, private_broker: LocalBroker, request: pytest.FixtureRequest
) -> None:
    began = datetime.now(UTC)
    on_private = {"USAGE_STREAM_KAFKA_BOOTSTRAP": private_broker.bootstrap}
    collector = collector_on(corner, private_broker)
    request.addfinalizer(collector.stop)  # whichever step fails, nothing is left running
    worker = corner.service("worker", **on_private)
    request.addfinalizer(worker.stop)
    worker.start()
    clients = [Client(corner.write_key, collector.url, flush_at=20, flush_interval=0.1,
                      backoff=EAGER) for _ in range(SENDERS)]  # fmt: skip
    sent: list[list[str]] = [[] for _ in clients]
    stop = threading.Event()

    def send(n: int) -> None:
        while not stop.wait(0.02):  # ~50 events a second each
            event = clients[n].track(f"user-{n}", "api_call", {"sender": n}, group_id=f"acct-{n}")
            sent[n].append(event.message_id)

    probe = Probe(collector, corner.write_key)
    threads = [threading.Thread(target=send, args=(n,)) for n in range(SENDERS)]
    threads.append(threading.Thread(target=probe.run))
    for thread in threads:
        thread.start()
    resumed: dict[str, float] = {}
    try:
        wait_until(lambda: stored_count(worker, corner) > 200, 60)

        kill(private_broker)
        time.sleep(3)
        private_broker.start()
        back = time.monotonic()
        resumed["broker: accepted"] = seconds_until(lambda: probe.accepted_since(back), 60)
        before = stored_count(worker, corner)
        resumed["broker: stored"] = seconds_until(lambda: stored_count(worker, corner) > before, 60)

        collector.kill()
        time.sleep(2)
        collector.start()
        back = time.monotonic()
        resumed["collector: accepted"] = seconds_until(lambda: probe.accepted_since(back), 60)

        for round_ in range(3):
            worker.kill()
            time.sleep(2)
            before = len(probe.accepted)  # accepted while it was down wait in Kafka
            restarted = time.monotonic()
            worker.start()
            waiting = [i for _, i in probe.accepted[before - 5 : before]]
            wait_until(lambda w=waiting: len(stored_ids(worker, corner, w)) == len(w), 60, 0.1)
            resumed[f"worker {round_ + 1}: stored"] = time.monotonic() - restarted
    finally:
        stop.set()
        probe.stop.set()
        for thread in threads:
            thread.join(30)
    try:
        for n, client in enumerate(clients):
            assert client.flush(timeout=120), f"sender {n} could not deliver everything"
        for n, client in enumerate(clients):
            stats = client.stats
            assert (stats.delivered, stats.failed, stats.dropped, stats.rejected) == (
                len(sent[n]), 0, 0, 0,
            ), stats  # fmt: skip
        ids = [i for ids in sent for i in ids] + [i for _, i in probe.accepted]
        stored = wait_until(
            lambda: len(found := stored_ids(worker, corner, ids)) >= len(ids) and found, 180
        )
        assert Counter(stored) == Counter(ids)  # every accepted event, none twice
    finally:
        for client in clients:
            client.shutdown(timeout=5)
        worker.stop()
        collector.stop()
    print(f"\n{len(ids)} events from {SENDERS} senders and the probe, each stored once")
    print("seconds from each restart until ingestion resumed:")
    for what, seconds in resumed.items():
        print(f"  {what:22} {seconds:5.1f}")
    # metered once: the stored quantities equal a recomputation from the raw events, stored once
    reconcile = subprocess.run(
        [sys.executable, "-m", "usage_stream.cli", "reconcile",
         "--from", (began - timedelta(hours=1)).isoformat(),
         "--to", (datetime.now(UTC) + timedelta(hours=1)).isoformat()],
        env={**os.environ, **corner.env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr
    slow = {what: s for what, s in resumed.items() if s > RESUME_SECONDS}
    assert not slow, f"ingestion resumed more than {RESUME_SECONDS:.0f} s after a restart: {slow}"
