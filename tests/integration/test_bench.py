"""`usage-stream bench` runs end to end on a tiny load and writes a report that holds together.

Speed is never asserted here (the machine is shared); only that every phase ran and measured
something, that the private stack cleaned up after itself, and that no event was lost or
stored twice on the way.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_bench_writes_a_valid_report(tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    tiny = ["--duration", "1", "--events", "2000", "--connections", "4", "--history", "20000"]
    tiny += ["--output", str(report_file)]
    done = subprocess.run(
        [sys.executable, "-m", "usage_stream.cli", "bench", *tiny],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=230,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(report_file.read_text())

    phases = ("collector", "sink", "baseline", "breakdown_process", "breakdown_faust", "worker")
    consumers = ("two_workers", "worker_history")
    for phase in (*phases, *consumers):
        assert report[phase]["per_second"] > 0, phase
        assert report[phase]["extra"]["events_per_cpu_second"] > 0, phase
    # over HTTP the server does the inserts: its CPU is counted apart
    transport = report["transport"]
    for name in ("worker_http", "baseline_http"):
        costs = transport[name]
        assert costs["per_second"] > 0 and costs["process_us"] > 0, name
        assert costs["server_us"] >= 0, name
    for name in ("worker_http", "baseline_http"):
        costs = transport[name]
        assert costs["server_us"] > 0, name  # the server inserted its rows
        assert costs["total_us"] == round(costs["process_us"] + costs["server_us"], 1), name
    assert transport["worker_vs_baseline_total_http"] == round(
        transport["worker_http"]["total_us"] / transport["baseline_http"]["total_us"], 2
    )
    assert not {k for k in report if "embedded" in k}
    assert not {k for k in (*transport, *report["where_time_goes"]) if "embedded" in k}
    scale = report["scale"]
    assert scale["two_workers_per_second"] == round(report["two_workers"]["per_second"]) > 0
    assert scale["two_workers_vs_one"] == round(
        report["two_workers"]["per_second"] / report["worker"]["per_second"], 3
    )
    assert scale["two_workers_vs_one"] > 0
    assert scale["cpus"] == report["machine"]["cpus"]
    assert report["two_workers"]["extra"]["consumers"] == 2
    assert report["end_to_end"]["events"] > 0
    assert (
        report["freshness"]["stored"] == report["exactness"]["tenants"]["bench_fresh"]["accepted"]
    )
    assert (
        0 <= report["freshness"]["p50"] <= report["freshness"]["p95"] <= report["freshness"]["p99"]
    )
    assert report["exactness"]["exact"] is True
    assert report["options"]["compression"] == "zstd"  # the collector's default
    assert report["freshness_load"]["extra"]["latency_ms"]["p99"] > 0
    assert [t["what"] for t in report["targets"]] == [
        "end-to-end sustained, lag flat",
        "freshness p95 at half load",
        "request latency p99 at half load (ms)",
        "worker / baseline copier",
        "worker with 20,000 stored events / on empty tables",
        "collector alone, one process (events/s)",
        "collector CPU per event (µs)",
        "worker CPU per event over HTTP, worker + server (µs)",
        "worker CPU per event / the copier's, both over HTTP (+ server each)",
    ]
    worker_cost = report["targets"][-2]  # the HTTP worker's CPU: its own and its server's
    assert worker_cost["value"] == transport["worker_http"]["total_us"]
    history = report["history"]
    assert history["stored_events"] == 20_000
    assert history["worker_ratio"] == round(
        report["worker_history"]["per_second"] / report["worker"]["per_second"], 3
    )
    processes = ("collector-0", "worker", "worker-two-1", "worker-two-2")
    processes += ("worker-history", "worker-e2e", "copier", "broker")
    for name in (*processes, "clickhouse server"):
        assert report["processes"][name]["peak_rss_bytes"] > 0, name
    # the table went to stdout, progress to stderr
    assert "| worker / baseline |" in done.stdout
    assert "| worker over HTTP |" in done.stdout
    assert "chDB inside" not in done.stdout
    assert f"| two workers, one group, one database ({scale['cpus']} CPUs" in done.stdout
    assert "| the collector's Kafka sink alone" in done.stdout
    assert "collector alone" in done.stderr
    # nothing of the private stack is left behind
    tmp_dirs = [line for line in done.stderr.splitlines() if "files in" in line]
    assert tmp_dirs
    private = Path(tmp_dirs[0].rsplit("files in ", 1)[1].rstrip(")"))
    assert not private.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # nothing in the cwd either
