"""The benchmark's arithmetic and generated load, without a stack: rates, lag, profiles, bodies."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ingest.limits import Limits
from ingest.validation import admit
from schemas import EnrichedEvent
from usage_stream.bench import extra
from usage_stream.bench.events import EventSource
from usage_stream.bench.measure import consumed_rate, lag_slope, per_second
from usage_stream.bench.offsets import OffsetSample
from usage_stream.bench.phases import Phase
from usage_stream.bench.profile import summarise
from usage_stream.bench.run import _scale, _transport
from usage_stream.bench.sandbox import SERVER
from usage_stream.cli import main


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


def _consumer(name: str, events: int, seconds: float, cpu: dict[str, float]) -> Phase:
    own = sum(v for k, v in cpu.items() if k != SERVER)
    extra = {"events_per_cpu_second": per_second(events, own)}
    return Phase(name, events, seconds, per_second(events, seconds), cpu, extra)


def test_over_http_the_servers_cpu_counts_with_the_consumers() -> None:
    results = {
        "worker": _consumer("worker", 100_000, 4.0, {"worker": 2.0, SERVER: 1.0}),
        "baseline": _consumer("copier", 100_000, 1.0, {"copier": 0.4, SERVER: 0.6}),
    }
    transport = _transport(results)
    assert transport["worker_http"] == {
        "per_second": 25_000, "process_us": 20.0, "server_us": 10.0, "total_us": 30.0,
    }  # fmt: skip
    assert transport["worker_vs_baseline_total_http"] == 3.0  # 30 / (4 + 6)
    assert set(transport) == {"worker_http", "baseline_http", "worker_vs_baseline_total_http"}


def test_two_workers_are_compared_with_one() -> None:
    one = _consumer("worker", 100_000, 4.0, {"worker": 2.0, SERVER: 1.0})
    two = _consumer("two workers", 100_000, 2.5, {"worker-two-1": 1.2, "worker-two-2": 1.2})
    two.extra["after_all_ready"] = True
    scale = _scale({"worker": one, "two_workers": two})
    assert scale["two_workers_per_second"] == 40_000
    assert scale["two_workers_vs_one"] == 1.6
    assert scale["process_us"] == 24.0 and scale["server_us"] == 0.0
    assert scale["after_all_ready"] is True


def test_without_the_bench_extra_the_bench_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(extra, "py_spy", lambda: None)
    for command in (["bench"], ["bench-activation"]):
        with pytest.raises(SystemExit, match=re.escape("pip install 'usage-stream[bench]'")):
            main(command)
