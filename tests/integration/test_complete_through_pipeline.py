"""How complete the numbers are, through Kafka and the real worker (processors.worker_progress):
`complete_through` follows an idle stream, stays before events waiting for a stopped worker,
and passes them once they are written. Read from the worker's /metrics."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Corner
from tests.harness import Service, basic, http, wait_until
from tests.integration.test_pipeline import stored, track

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
SLACK = 1.0
PROBE = 5.0  # the worker asks the broker for its offsets this often
GAUGE = "usage_stream_worker_complete_through_seconds"


def complete_through(worker: Service, topic: str) -> float | None:
    try:
        status, text = http("GET", f"{worker.url}/metrics")
    except OSError:
        return None
    if status != 200:
        return None
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == GAUGE and sample.labels["topic"] == topic:
                return float(sample.value)
    return None


def test_complete_through_follows_an_idle_stream_and_waits_for_a_stopped_worker(
    corner: Corner, collector: Service
) -> None:
    topic = corner.env["USAGE_STREAM_EVENTS_TOPIC"]
    worker = corner.service("worker", USAGE_STREAM_RECEIPT_SLACK_SECONDS=str(SLACK)).start()
    try:
        # idle: every partition is written to its end, so the numbers are complete until the
        # broker was last asked, less the slack; and that keeps moving while nothing arrives
        def near_now() -> float | None:
            value, now = complete_through(worker, topic), time.time()
            close = value is not None and now - SLACK - PROBE - 3 <= value <= now - SLACK
            return value if close else None

        first = wait_until(near_now, 60)
        wait_until(lambda: (near_now() or 0) > first + PROBE / 2, 30)

        worker.kill()  # no shutdown: whatever it records from now on, it records nothing
        events = [track(groupId=f"acct-{i}") for i in range(12)]  # on every partition, likely
        status, body = http(
            "POST", f"{collector.url}/v1/batch", {"batch": events}, basic(corner.write_key)
        )
        assert status == 200, body

        # the first reading of the restarted worker comes before faust is even assigned
        worker.start(ready_path="/healthz")
        restarted = wait_until(lambda: complete_through(worker, topic), 60, interval=0.05)
        ids = [e["messageId"] for e in events]
        rows = wait_until(lambda: len(found := stored(worker, corner, ids)) == 12 and found, 60)
        received = sorted(datetime.fromisoformat(r["received_at"]).timestamp() for r in rows)
        assert restarted < received[0]
        # once they are written (the probe's next readings), the time passes them
        wait_until(lambda: (complete_through(worker, topic) or 0) > received[-1], 3 * PROBE + 10)
    finally:
        worker.stop()
