"""The benchmark's arithmetic and generated load, without a stack: rates, lag, profiles, bodies."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from ingest.limits import Limits
from ingest.validation import admit
from schemas import EnrichedEvent
from usage_stream.bench.events import EventSource
from usage_stream.bench.loadgen import percentiles
from usage_stream.bench.measure import consumed_rate, lag_slope
from usage_stream.bench.offsets import OffsetSample
from usage_stream.bench.profile import summarise


def test_consumed_rate_is_measured_from_the_first_commit_to_ninety_percent() -> None:
    total = 1000
    readings = [(0.0, 0), (5.0, 0), (6.0, 100), (8.0, 500), (10.0, 900), (14.0, 1000)]
    samples = [(OffsetSample(at, total, done), {"worker": at / 2}) for at, done in readings]
    rate, seconds, cpu, events = consumed_rate(samples, total)
    assert (rate, seconds, events) == (200.0, 4.0, 800)  # 6.0 → 10.0: start-up and tail left out
    assert cpu.of("worker") == 2.0


def test_a_topic_read_in_one_go_is_measured_whole() -> None:
    samples = [(OffsetSample(at, 100, done), {}) for at, done in [(0.0, 0), (2.0, 100)]]
    assert consumed_rate(samples, 100)[:2] == (50.0, 2.0)


def test_lag_slope() -> None:
    growing = [OffsetSample(float(t), 1000 + 100 * t, 1000) for t in range(10)]
    assert round(lag_slope(growing)) == 100
    flat = [OffsetSample(float(t), 1000 + 100 * t, 1000 + 100 * t - 50) for t in range(10)]
    assert round(lag_slope(flat)) == 0


def test_percentiles() -> None:
    assert percentiles([float(v) for v in range(1, 101)]) == [51.0, 96.0, 100.0]
    assert percentiles([]) == [0.0, 0.0, 0.0]


def test_generated_batches_follow_the_event_contract() -> None:
    source = EventSource("t")
    body = json.loads(source.batch_body(50))
    admission = admit(body["batch"], tenant="bench", received_at=datetime.now(UTC), limits=Limits())
    assert len(admission.accepted) == 50 and not admission.rejected
    assert len({e.message_id for e in admission.accepted}) == 50
    assert len({e.account for e in admission.accepted}) == 50  # spread over accounts
    second = json.loads(source.batch_body(1))["batch"][0]["messageId"]
    assert second not in {e.message_id for e in admission.accepted}


def test_directly_loaded_events_decode_like_the_collectors() -> None:
    for event in EventSource("p").enriched("bench", 10):
        assert EnrichedEvent.from_kafka(event.to_kafka()) == event


def test_profile_summary_leaves_idle_threads_out(tmp_path: Path) -> None:
    collapsed = tmp_path / "profile.txt"
    collapsed.write_text(
        "run (app.py:1);write (batch.py:9);query (chdb/x.py:3) 6\n"
        "run (app.py:1);decode (batch.py:5) 2\n"
        "loop (asyncio/base_events.py:1);EpollSelector.select (selectors.py:468) 40\n"
    )
    summary = summarise(collapsed)
    assert summary["busy_samples"] == 8
    assert summary["self"] == {"x.py:query": 0.75, "batch.py:decode": 0.25}
    assert summary["inclusive"]["app.py:run"] == 1.0
