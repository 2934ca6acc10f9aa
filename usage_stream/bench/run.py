"""`usage-stream bench`: start a private sandbox, run every phase, report against the targets."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runtime.procstat import Usage, machine_load
from runtime.topics import ensure_topics
from schemas.config import EXAMPLE_CONFIG
from usage_stream.bench import phases
from usage_stream.bench.offsets import GroupOffsets
from usage_stream.bench.phases import Bench, Phase
from usage_stream.bench.profile import Profiler
from usage_stream.bench.report import table, targets
from usage_stream.bench.sandbox import SERVER, TENANTS, BenchSandbox


@dataclass(frozen=True)
class BenchOptions:
    duration: float = 20.0  # seconds of load in each load phase
    events: int = 200_000  # at least this many in the topic the worker and the copier read
    partitions: int = 6
    collectors: int = 1  # collector processes; the load generator spreads over them
    connections: int = 8  # concurrent HTTP connections of the load generator
    batch: int = 100  # events per HTTP request
    sink_batch_size: int = 10_000
    sink_batch_seconds: float = 0.25
    output: Path = Path("bench-report.json")
    profile: Path | None = None  # write py-spy profiles here, and their summaries in the report
    keep: bool = False  # keep the temporary directory (logs, data) for a look afterwards
    config: Path = EXAMPLE_CONFIG  # the meters, features and activation rules the worker runs
    history: int = 0  # also run the worker alone on tables holding this many stored events
    compression: str = "zstd"  # what the collectors (and the pre-load) compress Kafka batches with


def _say(started: float) -> phases.Say:
    def say(line: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {line}", file=sys.stderr, flush=True)

    return say


def _phase(phase: Phase) -> dict[str, Any]:
    return asdict(phase)


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Run every phase on a fresh private sandbox; write the JSON report, print the table."""
    say = _say(time.monotonic())
    home = Path(tempfile.mkdtemp(prefix="usage-stream-bench-"))
    sandbox = BenchSandbox(
        home,
        options.partitions,
        options.sink_batch_size,
        options.sink_batch_seconds,
        options.config.resolve(),
        options.compression,
    )
    bench = Bench(sandbox, say, options.connections, options.batch)
    load_before = machine_load()
    results: dict[str, Any] = {}
    profiles: dict[str, Any] = {}
    services: list[Usage] = []  # the broker's and the server's: started apart from the others
    try:
        _start(bench, sandbox, options, services)
        # 1. The collector alone; what it accepts is the pre-loaded topic of the next phases.
        profiler = _profiler(options, bench.collectors[0].popen.pid, "collector", options.duration)
        results["collector"] = phases.collector_alone(bench, options.duration)
        if profiler is not None:
            profiles["collector"] = profiler.finish()
        results["sink"] = phases.sink_alone(bench, options.events // 2)
        total = phases.top_up(bench, options.events)
        _same_topic(bench, sandbox, options, total, results, profiles)
        found, drained = _end_to_end(bench, sandbox, options, results, services)
        say("done; stopping everything")
    finally:
        if bench.offsets is not None:
            bench.offsets.close()
        sandbox.stop_all()
        if not options.keep:
            shutil.rmtree(home, ignore_errors=True)

    report = _report(options, results, found, bench, sandbox, services, profiles, load_before)
    report["freshness"]["drained"] = drained
    options.output.write_text(json.dumps(report, indent=2, default=str))
    print(table(report))
    print(f"\nreport written to {options.output}")
    return report


def _start(
    bench: Bench, sandbox: BenchSandbox, options: BenchOptions, services: list[Usage]
) -> None:
    """The private broker and ClickHouse server, the topics, the collectors, all ready."""
    say = bench.say
    say(f"starting a private Kafka broker on {sandbox.broker.bootstrap} (files in {sandbox.home})")
    sandbox.broker.start()
    services.append(Usage("broker", sandbox.broker.pid() or 0))
    say(f"starting a private ClickHouse server on {sandbox.server.url}")
    sandbox.server.start()
    services.append(Usage(SERVER, sandbox.server.pid() or 0))
    ensure_topics(
        sandbox.broker.bootstrap,
        [sandbox.topic, "events.invalid", phases.SINK_TOPIC],
        options.partitions,
    )
    bench.offsets = GroupOffsets(sandbox.broker.bootstrap, sandbox.topic)
    bench.collectors = [sandbox.collector(i) for i in range(options.collectors)]
    for collector in bench.collectors:
        collector.wait_ready()


def _same_topic(
    bench: Bench,
    sandbox: BenchSandbox,
    options: BenchOptions,
    total: int,
    results: dict[str, Any],
    profiles: dict[str, Any],
) -> None:
    """2. Consumers of the same pre-loaded topic, one at a time, each in its own group and its
    own database on the server, over HTTP (the production path)."""
    say = bench.say
    cap = max(10.0, 1.5 * options.duration)
    batches = (options.sink_batch_size, options.sink_batch_seconds)
    say(f"baseline copier: reading the {total:,} events over HTTP to the server, no processing")
    copier = sandbox.copier("bench-baseline", *batches)
    results["baseline"] = phases.consume_all(bench, copier, "bench-baseline", total, cap)
    copier.stop()
    for mode, what in (("process", "our processing without faust"), ("faust", "faust alone")):
        say(f"{what}: reading the same events (at most {cap:.0f}s)")
        consumer = sandbox.breakdown(mode, f"bench-{mode}", *batches)
        results[f"breakdown_{mode}"] = phases.consume_all(
            bench, consumer, f"bench-{mode}", total, cap
        )
        consumer.stop()
    say(f"worker alone over HTTP: the same events through every processor (at most {cap:.0f}s)")
    worker = sandbox.worker("bench-worker")
    profiler = _profiler(options, worker.popen.pid, "worker", cap)
    results["worker"] = phases.consume_all(bench, worker, "bench-worker", total, cap)
    if profiler is not None:
        profiles["worker"] = profiler.finish()
    worker.stop(timeout=5)  # what it holds unwritten is not measured: no need to wait
    results["two_workers"] = _two_workers(bench, sandbox, total, cap)
    if options.history:
        results["worker_history"] = _worker_with_history(
            bench, sandbox, options, total, cap, profiles
        )


def _end_to_end(
    bench: Bench,
    sandbox: BenchSandbox,
    options: BenchOptions,
    results: dict[str, Any],
    services: list[Usage],
) -> tuple[dict[str, Any], bool]:
    """3. End to end, with a worker whose group starts at the log end (what is left of the
    pre-loaded topic is not its business): sustained, then freshness at half that rate, then
    flat out last, as its backlog needs no draining before another phase. Returns what the
    worker stored, read back, and whether the sustained runs drained."""
    group = "bench-e2e"
    assert bench.offsets is not None  # set by _start
    bench.offsets.start_at_end(group)
    worker = sandbox.worker(group, "worker-e2e")
    worker.wait_ready()
    sustained, drained = _find_sustained(bench, group, _sustainable(results), options.duration)
    results["end_to_end"] = sustained
    fresh = phases.through_everything(
        bench, "freshness at half load", "bench_fresh", sustained.per_second / 2,
        options.duration, group,
    )  # fmt: skip
    drained = phases.drain(bench, group, timeout=60) and drained
    results["freshness_load"] = fresh
    results["end_to_end_max"] = phases.through_everything(
        bench, "end-to-end flat out", "bench_max", 0, options.duration / 2, group
    )
    phases.drain(bench, group, timeout=10)  # its backlog is not measured: a short wait
    for process in sandbox.processes:
        process.usage.sample()
    for service in services:
        service.sample()
    bench.say("stopping the worker to read its ClickHouse: freshness and exactness")
    worker.stop(timeout=10)
    return phases.readback(sandbox, "worker-e2e", TENANTS[1:]), drained


def _two_workers(bench: Bench, sandbox: BenchSandbox, total: int, cap: float) -> Phase:
    """Two `usage-stream worker` processes in one consumer group, writing to one database on
    the server, reading the same pre-loaded topic: the partitions split between them."""
    group, names = "bench-two-workers", ("worker-two-1", "worker-two-2")
    bench.say(f"two workers, one group, one database: the same events (at most {cap:.0f}s)")
    workers = [sandbox.worker(group, name, database="bench_two_workers") for name in names]
    try:
        return phases.consume_together(bench, workers, "two workers", group, total, cap)
    finally:
        for worker in workers:
            worker.stop(timeout=5)


def _worker_with_history(
    bench: Bench,
    sandbox: BenchSandbox,
    options: BenchOptions,
    total: int,
    cap: float,
    profiles: dict[str, Any],
) -> Phase:
    """The worker-alone phase again (over HTTP), on a worker whose tables on the server already
    hold `options.history` stored events: what the dedup check and every other per-batch query
    cost with history."""
    name = "worker-history"
    bench.say(f"history: storing {options.history:,} events in the database of a second worker")
    started = time.monotonic()
    preload = sandbox.history(name, options.history)
    if preload.wait() != 0:
        raise RuntimeError(f"the history preload failed; see its log in {sandbox.home / 'logs'}")
    seconds = time.monotonic() - started
    bench.say(f"worker alone with {options.history:,} stored events (at most {cap:.0f}s)")
    worker = sandbox.worker("bench-worker-history", name)
    profiler = _profiler(options, worker.popen.pid, name, cap)
    phase = phases.consume_all(bench, worker, "bench-worker-history", total, cap)
    if profiler is not None:
        profiles[name] = profiler.finish()
    worker.stop(timeout=5)
    phase.extra["stored_events"] = options.history
    phase.extra["preload_seconds"] = round(seconds, 1)
    return phase


# Runs the search for the sustained rate may take: on a loaded machine two were sometimes not
# enough to get below the rate where the lag grows.
SUSTAINED_TRIES = 4


def _find_sustained(bench: Bench, group: str, guess: float, duration: float) -> tuple[Phase, bool]:
    """The highest rate found with the lag flat: the guess, then 25% more if the lag stayed
    flat; or else lower, a little below what the worker committed meanwhile (half the rate if
    the run was too short to see a commit), until the lag stays flat, in at most
    SUSTAINED_TRIES runs. Returns it (the last run if none was flat) and whether the lag
    drained."""
    runs: list[Phase] = []
    rate, what, drained = guess, "end-to-end sustained", True
    while len(runs) < SUSTAINED_TRIES:
        run = phases.through_everything(bench, what, "bench", rate, duration, group)
        runs.append(run)
        drained = phases.drain(bench, group, timeout=60)
        flat = [p for p in runs if p.extra["lag_flat"]]
        if not drained or (flat and len(runs) > 1):
            break
        if run.extra["lag_flat"]:
            rate, what = 1.25 * rate, "end-to-end sustained, 25% more"
        else:
            committed = run.extra["committed_per_second"]
            rate = 0.8 * committed if committed > 0.2 * rate else 0.5 * rate
            what = "end-to-end sustained, lower"
    flat = [p for p in runs if p.extra["lag_flat"]]
    return max(flat, key=lambda p: p.per_second) if flat else runs[-1], drained


def _sustainable(results: dict[str, Phase]) -> float:
    """A first guess at the rate the whole pipeline sustains on this machine: 90% of the
    slowest of the collector alone, the worker alone, and what the CPUs give both at once at
    the CPU each spent per event (the broker's share included in theirs, the server's share
    of the worker's phase added to the worker's)."""
    collector, worker = results["collector"], results["worker"]
    rates = [collector.per_second, worker.per_second]
    costs = [1 / r.extra["events_per_cpu_second"] for r in (collector, worker)
             if r.extra.get("events_per_cpu_second")]  # fmt: skip
    if len(costs) == 2:
        server = _server_us(worker) or 0.0
        rates.append((os.cpu_count() or 1) / (sum(costs) + server / 1e6))
    return 0.9 * min(rates)


def _profiler(options: BenchOptions, pid: int, name: str, seconds: float) -> Profiler | None:
    if options.profile is None:
        return None
    options.profile.mkdir(parents=True, exist_ok=True)
    return Profiler(pid, options.profile / f"{name}.txt", seconds)


def _report(
    options: BenchOptions,
    results: dict[str, Phase],
    found: dict[str, Any],
    bench: Bench,
    sandbox: BenchSandbox,
    services: list[Usage],
    profiles: dict[str, Any],
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    fresh = found.get("bench_fresh", {})
    exactness = _exactness(found, bench.accepted)
    usages = [p.usage for p in sandbox.processes] + services
    processes = {
        u.name: {"peak_rss_bytes": u.peak_rss, "cpu_seconds": round(u.cpu, 2)} for u in usages
    }
    loadgens = [r for r in results.values() if "loadgen_cpu_seconds" in r.extra]
    processes["load generator"] = {
        "peak_rss_bytes": max((r.extra["loadgen_peak_rss_bytes"] for r in loadgens), default=0),
        "cpu_seconds": round(sum(r.extra["loadgen_cpu_seconds"] for r in loadgens), 2),
    }
    baseline = results["baseline"].per_second
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "load_before": load_before,
            "load_after": machine_load(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(options).items()},
        **{name: _phase(phase) for name, phase in results.items()},
        "worker_vs_baseline": results["worker"].per_second / baseline if baseline else 0.0,
        "transport": _transport(results),
        "scale": _scale(results),
        **_history(results),
        "freshness": {"rate": results["freshness_load"].per_second, **fresh},
        "exactness": exactness,
        "where_time_goes": _where_time_goes(results),
        "processes": processes,
        "profiles": profiles,
    }
    report["targets"] = targets(report)
    report["cores_for_target"] = _cores_for(results, report["targets"])
    return report


def _history(results: dict[str, Phase]) -> dict[str, Any]:
    """The worker's rate with stored history against its rate on empty tables, same topic."""
    found = results.get("worker_history")
    if found is None:
        return {}
    empty = results["worker"].per_second
    return {
        "history": {
            "stored_events": found.extra["stored_events"],
            "preload_seconds": found.extra["preload_seconds"],
            "worker_per_second": round(found.per_second),
            "empty_worker_per_second": round(empty),
            "worker_ratio": round(found.per_second / empty, 3) if empty else 0.0,
        }
    }


def _exactness(found: dict[str, Any], accepted: dict[str, int]) -> dict[str, Any]:
    """Every tenant: each id stored once and metered once. The sustained and freshness tenants,
    drained before the worker stopped: everything accepted is stored. (A 503 may leave part of
    a refused request on Kafka, stored too: stored >= accepted.)"""
    drained = ("bench", "bench_fresh")
    tenants = {tenant: {**f, "accepted": accepted.get(tenant, 0)} for tenant, f in found.items()}
    exact = all(
        f["stored"] == f["distinct_ids"] == f["metered_events"]
        and (tenant not in drained or f["stored"] >= f["accepted"])
        for tenant, f in tenants.items()
    )
    return {"exact": exact, "tenants": tenants}


def _micros(phase: Phase | None) -> float | None:
    rate = phase.extra.get("events_per_cpu_second") if phase is not None else None
    return round(1e6 / rate, 1) if rate else None


def _server_us(phase: Phase | None) -> float | None:
    """The ClickHouse server's CPU per event over the phase's measured stretch: the inserts
    and queries it ran for the consumer."""
    if phase is None or not phase.events:
        return None
    return round(1e6 * phase.cpu.get(SERVER, 0.0) / phase.events, 1)


def _costs(phase: Phase | None) -> dict[str, Any]:
    """A consumer's rate and CPU per event: its process, the server, and the sum of what was
    spent for it."""
    process, server = _micros(phase), _server_us(phase)
    total = None if process is None else round(process + (server or 0.0), 1)
    return {
        "per_second": round(phase.per_second) if phase is not None else 0,
        "process_us": process,
        "server_us": server,
        "total_us": total,
    }


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a is not None and b else None


def _transport(results: dict[str, Phase]) -> dict[str, Any]:
    """The worker and the copier over HTTP to the server, on the same topic: what each costs
    in all (the process and the server)."""
    worker, baseline = _costs(results.get("worker")), _costs(results.get("baseline"))
    return {
        "worker_http": worker,
        "baseline_http": baseline,
        "worker_vs_baseline_total_http": _ratio(worker["total_us"], baseline["total_us"]),
    }


def _scale(results: dict[str, Phase]) -> dict[str, Any]:
    """Two workers in one group against one, both over HTTP to one server, on this machine's
    cores (which the broker and the server share with them)."""
    two, one = results.get("two_workers"), results["worker"]
    if two is None:
        return {}
    return {
        "cpus": os.cpu_count(),
        "two_workers_per_second": round(two.per_second),
        "one_worker_per_second": round(one.per_second),
        "two_workers_vs_one": round(two.per_second / one.per_second, 3) if one.per_second else 0.0,
        "after_all_ready": two.extra.get("after_all_ready", False),
        **{k: v for k, v in _costs(two).items() if k != "per_second"},
    }


def _where_time_goes(results: dict[str, Phase]) -> dict[str, Any]:
    """CPU microseconds per event of each consumer of the same topic, its own process (the
    server's share is in `transport`): the copier is Kafka and ClickHouse alone; processing
    without faust adds our decoding and processors (activation aside); faust alone is the
    framework with nothing to do; the worker is all of it."""
    return {
        "baseline_copier_us": _micros(results.get("baseline")),
        "processing_without_faust_us": _micros(results.get("breakdown_process")),
        "faust_alone_us": _micros(results.get("breakdown_faust")),
        "worker_us": _micros(results.get("worker")),
        "collector_us": _micros(results.get("collector")),
        "collector_sink_us": _micros(results.get("sink")),
    }


def _cores_for(results: dict[str, Phase], wanted: list[dict[str, Any]]) -> float | None:
    """CPU cores the end-to-end target would take at the CPU per event measured here: the
    collector's, the worker's, the broker's and the ClickHouse server's (the last two from the
    sustained run)."""
    e2e = results["end_to_end"]
    costs = [_micros(results.get("collector")), _micros(results.get("worker"))]
    if None in costs or not e2e.events:
        return None
    services_us = 1e6 * (e2e.cpu.get("broker", 0.0) + e2e.cpu.get(SERVER, 0.0)) / e2e.events
    per_event = sum(c for c in costs if c is not None) + services_us
    target = next(float(t["target_value"]) for t in wanted if "target_value" in t)
    return round(target * per_event / 1e6, 1)
