"""The SDK and the collector across a restart or a crash of Kafka itself: a private broker, so the
session's keeps running."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import uuid
from collections import Counter

import pytest
from usage_stream_sdk import Client

from runtime.topics import ensure_topics
from tests.conftest import Corner
from tests.harness import Service, basic, http, wait_until
from tests.integration.test_sdk_delivery import stored_ids
from usage_stream.broker import LocalBroker

pytestmark = pytest.mark.integration


def collector_on(corner: Corner, broker: LocalBroker) -> Service:
    """A collector producing to `broker`, its topics created, giving up on Kafka after 3 s."""
    topics = [corner.env["USAGE_STREAM_EVENTS_TOPIC"], corner.env["USAGE_STREAM_INVALID_TOPIC"]]
    ensure_topics(broker.bootstrap, topics, 3)
    return corner.service(
        "collector",
        USAGE_STREAM_KAFKA_BOOTSTRAP=broker.bootstrap,
        USAGE_STREAM_PRODUCE_TIMEOUT_SECONDS="3",
    ).start()


def kill(broker: LocalBroker) -> None:
    """SIGKILL the broker, and reap it: this process started it, and a zombie looks alive."""
    pid = broker.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def test_every_event_arrives_once_across_a_broker_restart(
    corner: Corner, private_broker: LocalBroker
) -> None:
    on_private = {"USAGE_STREAM_KAFKA_BOOTSTRAP": private_broker.bootstrap}
    collector = collector_on(corner, private_broker)
    worker: Service | None = None
    client = Client(corner.write_key, collector.url, flush_at=10, flush_interval=0.1)
    try:
        ids = [client.track("user-1", "api_call", {"n": i}).message_id for i in range(20)]
        assert client.flush(timeout=60)
        private_broker.stop()
        ids += [client.track("user-1", "api_call", {"n": i}).message_id for i in range(20, 50)]
        wait_until(lambda: client.stats.retries >= 1, 120)  # the collector answers 503
        private_broker.start()
        assert client.flush(timeout=300)
        stats = client.stats
        assert (stats.delivered, stats.failed, stats.dropped, stats.rejected) == (50, 0, 0, 0)
        # the worker reads everything the broker holds, duplicates from retries included
        worker = corner.service("worker", **on_private).start()
        stored = wait_until(
            lambda: len(found := stored_ids(worker, corner, ids)) >= 50 and found, 120
        )
        assert Counter(stored) == Counter(ids)  # every one, none twice
    finally:
        client.shutdown(timeout=5)
        if worker is not None:
            worker.stop()
        collector.stop()


@pytest.mark.timeout(300)
def test_the_collector_recovers_by_itself_after_the_broker_is_killed_mid_request(
    corner: Corner, private_broker: LocalBroker
) -> None:
    collector = collector_on(corner, private_broker)
    answers: list[tuple[float, int]] = []
    stop = threading.Event()

    def send() -> None:  # a steady sender, so requests are in flight when the broker dies
        while not stop.is_set():
            event = {"type": "track", "messageId": str(uuid.uuid4()), "userId": "u-1",
                     "event": "api_call"}  # fmt: skip
            try:
                status, _ = http("POST", f"{collector.url}/v1/batch", {"batch": [event]},
                                 basic(corner.write_key))  # fmt: skip
            except OSError:
                status = 0
            answers.append((time.monotonic(), status))

    def ready() -> bool:
        try:
            return http("GET", f"{collector.url}/readyz")[0] == 200
        except OSError:
            return False

    senders = [threading.Thread(target=send) for _ in range(4)]
    for sender in senders:
        sender.start()
    try:
        wait_until(lambda: sum(status == 200 for _, status in answers) >= 20, 60)
        kill(private_broker)
        wait_until(lambda: not ready(), 15)  # the truth, at once: Kafka cannot take events
        time.sleep(5)
        private_broker.start()
        back = time.monotonic()
        wait_until(ready, 30)
        # it delivers again by itself, within seconds of the broker's return
        wait_until(lambda: any(t > back and status == 200 for t, status in answers[-50:]), 45)
    finally:
        stop.set()
        for sender in senders:
            sender.join(30)
        collector.stop()


def test_a_worker_stops_within_ten_seconds_of_sigterm_with_kafka_down(
    corner: Corner, private_broker: LocalBroker
) -> None:
    on_private = {"USAGE_STREAM_KAFKA_BOOTSTRAP": private_broker.bootstrap}
    worker = corner.service("worker", **on_private).start()
    assert worker.process is not None
    kill(private_broker)
    time.sleep(3)  # its clients notice the broker is gone
    asked = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    try:
        worker.process.wait(30)
        assert time.monotonic() - asked <= 10
    finally:
        worker.kill()


@pytest.mark.timeout(300)
def test_a_running_worker_rides_out_a_broker_crash(
    corner: Corner, private_broker: LocalBroker
) -> None:
    collector = collector_on(corner, private_broker)
    worker = corner.service("worker", USAGE_STREAM_KAFKA_BOOTSTRAP=private_broker.bootstrap).start()
    client = Client(corner.write_key, collector.url, flush_at=10, flush_interval=0.1)
    try:
        before = [client.track("user-1", "api_call", {"n": i}).message_id for i in range(10)]
        assert client.flush(timeout=60)
        wait_until(lambda: len(stored_ids(worker, corner, before)) == 10, 60)
        kill(private_broker)
        time.sleep(5)
        private_broker.start()
        after = [client.track("user-1", "api_call", {"n": i}).message_id for i in range(10, 20)]
        assert client.flush(timeout=120)
        # the same worker process, never restarted, stores what came after the crash
        wait_until(lambda: len(stored_ids(worker, corner, after)) == 10, 120)
        assert worker.process is not None and worker.process.poll() is None
    finally:
        client.shutdown(timeout=5)
        worker.stop()
        collector.stop()
