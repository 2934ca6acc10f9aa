"""The benchmark's phases, each run in the private sandbox and returning plain numbers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaProducer

from runtime.procstat import cpu_seconds
from usage_stream.bench.events import EventSource
from usage_stream.bench.loadgen import LoadResult
from usage_stream.bench.measure import CpuWindow, consumed_rate, lag_slope, per_second
from usage_stream.bench.offsets import GroupOffsets, OffsetSample
from usage_stream.bench.sandbox import PRELOAD_TENANT, SERVER, BenchSandbox, Process

Say = Callable[[str], None]
SAMPLE_SECONDS = 0.25
# Lag counts as flat when it grows by less than this share of the accepted rate: what remains
# is the batch being written and the commit interval, not a backlog building up.
FLAT_SHARE = 0.05


@dataclass
class Phase:
    """One measured stretch: its rates, the CPU its processes spent, and anything else."""

    name: str
    events: int = 0
    seconds: float = 0.0
    per_second: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


class Bench:
    """The running sandbox plus what every phase needs: offsets, CPU readings, status lines."""

    def __init__(self, sandbox: BenchSandbox, say: Say, connections: int, batch: int) -> None:
        self.sandbox = sandbox
        self.say = say
        self.connections = connections
        self.batch = batch
        self.collectors: list[Process] = []
        self.offsets: GroupOffsets | None = None
        self.accepted: dict[str, int] = {}
        self._loads = 0  # message ids are `<tenant>.<load>-<n>`: distinct across loads

    def cpu(self) -> dict[str, float]:
        """CPU seconds so far of every running process of the sandbox, its broker and server."""
        sandbox = self.sandbox
        readings = {p.name: p.usage.sample().cpu for p in sandbox.processes if p.alive()}
        for name, pid in (("broker", sandbox.broker.pid()), (SERVER, sandbox.server.pid())):
            if pid is not None:
                readings[name] = cpu_seconds(pid)
        return readings

    def offsets_of(self, group: str) -> OffsetSample:
        """The topic's log end and what `group` has committed of it, now."""
        assert self.offsets is not None
        return self.offsets.read(group)

    def load(
        self, tenant: str, rate: float, duration: float, watch: Callable[[], None]
    ) -> LoadResult:
        """Run the load generator in its own process; `watch` is called while it runs."""
        self._loads += 1
        run = f"{tenant}.{self._loads}"
        argv = [sys.executable, "-m", "usage_stream.bench.loadgen"]
        for collector in self.collectors:
            argv += ["--url", f"{collector.url}/v1/batch"]
        argv += [
            "--key", self.sandbox.write_keys[tenant], "--rate", str(rate),
            "--duration", str(duration), "--batch", str(self.batch),
            "--connections", str(self.connections), "--run", run,
        ]  # fmt: skip
        loadgen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.monotonic() + duration + 60
        while loadgen.poll() is None and time.monotonic() < deadline:
            watch()
            time.sleep(SAMPLE_SECONDS)
        if loadgen.poll() is None:
            loadgen.kill()
        out, err = loadgen.communicate()
        if loadgen.returncode != 0:
            raise RuntimeError(f"load generator failed: {err.decode(errors='replace')[-2000:]}")
        result = LoadResult(**json.loads(out))
        self.accepted[tenant] = self.accepted.get(tenant, 0) + result.events_accepted
        return result


def collector_alone(bench: Bench, duration: float) -> Phase:
    """As many events as the collectors take, batches of 100, nothing consuming the topic."""
    bench.say(f"collector alone: {bench.connections} connections, flat out for {duration:.0f}s")
    before = bench.cpu()
    result = bench.load(PRELOAD_TENANT, 0, duration, lambda: None)
    window = CpuWindow.between(before, bench.cpu())
    rate = result.accepted_per_second
    bench.say(f"  {result.events_accepted:,} events accepted, {rate:,.0f}/s")
    return Phase(
        "collector",
        result.events_accepted,
        result.seconds,
        rate,
        window.seconds,
        {
            "statuses": result.statuses,
            "latency_ms": result.latency_ms,
            "loadgen_cpu_seconds": result.cpu_seconds,
            "loadgen_peak_rss_bytes": result.peak_rss_bytes,
            "events_per_cpu_second": per_second(result.events_accepted, window.of("collector")),
        },
    )


SINK_TOPIC = "bench-sink"  # what the sink alone writes: read by no consumer of the run


def sink_alone(bench: Bench, events: int) -> Phase:
    """The collector's Kafka sink on its own (usage_stream.bench.sink), in its own process."""
    bench.say(f"the collector's Kafka sink alone: {events:,} events, {bench.connections} threads")
    argv = [
        sys.executable, "-m", "usage_stream.bench.sink",
        "--bootstrap", bench.sandbox.broker.bootstrap, "--topic", SINK_TOPIC,
        "--events", str(events), "--batch", str(bench.batch),
        "--threads", str(bench.connections), "--compression", bench.sandbox.compression,
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, timeout=600, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the sink alone failed: {done.stderr.decode(errors='replace')[-2000:]}")
    figures = json.loads(done.stdout.decode().strip().splitlines()[-1])
    sent, seconds = int(figures["events"]), float(figures["seconds"])
    bench.say(f"  {sent:,} events produced, {sent / seconds:,.0f}/s")
    return Phase(
        "sink",
        sent,
        seconds,
        per_second(sent, seconds),
        {"sink": figures["cpu_seconds"]},
        {"events_per_cpu_second": per_second(sent, figures["cpu_seconds"])},
    )


def top_up(bench: Bench, events: int) -> int:
    """Fill the topic to at least `events` messages, produced directly as the collector would."""
    assert bench.offsets is not None
    missing = events - bench.offsets.end()
    if missing > 0:
        bench.say(f"loading {missing:,} more events straight into the topic")
        sandbox = bench.sandbox
        producer = KafkaProducer(
            bootstrap_servers=sandbox.broker.bootstrap,
            acks="all",
            linger_ms=20,
            batch_size=256 * 1024,
            compression_type=None if sandbox.compression == "none" else sandbox.compression,
        )
        for event in EventSource("p").enriched(PRELOAD_TENANT, missing):
            producer.send(sandbox.topic, key=event.partition_key.encode(), value=event.to_kafka())
        producer.flush()
        producer.close()
        bench.accepted[PRELOAD_TENANT] = bench.accepted.get(PRELOAD_TENANT, 0) + missing
    return bench.offsets.end()


def consume_all(bench: Bench, process: Process, group: str, total: int, cap: float) -> Phase:
    """Time `process` reading the pre-loaded topic into ClickHouse, for at most `cap` seconds
    once it has started committing (a slow consumer is measured on part of the topic)."""
    return consume_together(bench, [process], process.name, group, total, cap)


def consume_together(
    bench: Bench, processes: Sequence[Process], name: str, group: str, total: int, cap: float
) -> Phase:
    """`consume_all` for consumers sharing one group. With more than one, measured from when
    every one answers ready (all have joined: the rebalance is behind them), for at most `cap`
    seconds from then, unless by then too little is left to measure (then from the first
    commit; `extra["after_all_ready"]` says which)."""
    samples: list[tuple[OffsetSample, dict[str, float]]] = []
    latest = time.monotonic() + cap + 60  # start-up included
    deadline = latest
    first_commit: float | None = None
    together = len(processes) > 1
    waiting = [p for p in processes if p.url] if together else []
    all_ready: float | None = None
    shown = 0.0
    while time.monotonic() < deadline:
        for process in processes:
            process.check()
        waiting = [p for p in waiting if not p.ready()]
        reading = bench.offsets_of(group)
        samples.append((reading, bench.cpu()))
        if together and all_ready is None and not waiting:
            all_ready = reading.at
            deadline = min(latest, all_ready + cap)  # `cap` seconds of all of them
            bench.say(f"  {name}: all ready, {reading.committed:,} committed by then")
        if reading.committed >= total:
            break
        if reading.committed and first_commit is None:
            first_commit = reading.at
            if not together:
                deadline = min(deadline, first_commit + cap)
        if reading.at - shown >= 5:
            shown = reading.at
            bench.say(f"  {name}: {reading.committed:,} of {total:,} committed")
        time.sleep(SAMPLE_SECONDS)
    ready = [s for s in samples if all_ready is not None and s[0].at >= all_ready]
    rate, seconds, window, events = consumed_rate(ready, total)
    after_all_ready = rate > 0
    if not after_all_ready:
        rate, seconds, window, events = consumed_rate(samples, total)
    done = samples[-1][0].committed if samples else 0
    bench.say(f"  {name}: {rate:,.0f} events/s ({done:,} of {total:,} committed)")
    extra: dict[str, Any] = {
        "committed": done,
        "complete": done >= total,
        "events_per_cpu_second": per_second(events, window.of(*(p.name for p in processes))),
    }
    if together:
        extra["after_all_ready"] = after_all_ready
        extra["consumers"] = len(processes)
    return Phase(name, events, seconds, rate, window.seconds, extra)


def through_everything(
    bench: Bench, name: str, tenant: str, rate: float, duration: float, group: str
) -> Phase:
    """HTTP → collectors → Kafka → worker → ClickHouse at `rate` (0: flat out): what got in,
    what got committed, and how the lag moved over the second half of the run."""
    what = f"{rate:,.0f} events/s" if rate else "flat out"
    bench.say(f"{name}: {what} for {duration:.0f}s through collector, Kafka and worker")
    samples: list[OffsetSample] = []

    def watch() -> None:
        samples.append(bench.offsets_of(group))

    start, before = bench.offsets_of(group), bench.cpu()
    result = bench.load(tenant, rate, duration, watch)
    end, after = bench.offsets_of(group), bench.cpu()
    window = CpuWindow.between(before, after)
    half = [s for s in samples if s.at >= samples[0].at + (samples[-1].at - samples[0].at) / 2]
    slope = lag_slope(half) if samples else 0.0
    accepted = result.accepted_per_second
    stored = per_second(end.committed - start.committed, end.at - start.at)
    flat = slope <= FLAT_SHARE * max(accepted, 1.0)
    bench.say(
        f"  accepted {accepted:,.0f}/s, committed {stored:,.0f}/s, lag {end.lag:,}"
        f" ({'flat' if flat else f'growing {slope:,.0f}/s'})"
    )
    pipeline_cpu = window.of("collector", "worker", "broker", SERVER)
    return Phase(
        name,
        result.events_accepted,
        result.seconds,
        accepted,
        window.seconds,
        {
            "target_rate": rate,
            "committed_per_second": stored,
            "lag_end": end.lag,
            "lag_max": max((s.lag for s in samples), default=0),
            "lag_growth_per_second": slope,
            "lag_flat": flat,
            "statuses": result.statuses,
            "latency_ms": result.latency_ms,
            "loadgen_cpu_seconds": result.cpu_seconds,
            "loadgen_peak_rss_bytes": result.peak_rss_bytes,
            "events_per_cpu_second": per_second(result.events_accepted, pipeline_cpu),
        },
    )


def drain(bench: Bench, group: str, timeout: float) -> bool:
    """Wait until the group has committed every message; False if it did not within timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if bench.offsets_of(group).lag == 0:
            return True
        time.sleep(SAMPLE_SECONDS)
    return False


def readback(sandbox: BenchSandbox, worker: str, tenants: Sequence[str]) -> dict[str, Any]:
    """Freshness and exactness from a stopped worker's database (see bench.readback)."""
    args, env = sandbox.readback_env(worker)
    argv = [sys.executable, "-m", "usage_stream.bench.readback", *args]
    for tenant in tenants:
        argv += ["--tenant", tenant]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"reading the worker's ClickHouse failed: {done.stderr[-2000:]}")
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found
