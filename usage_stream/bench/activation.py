"""`usage-stream bench-activation`: how fast an activation follows its qualifying event.

The bench's private sandbox (its own Kafka broker and ClickHouse server on free ports, a clean
environment and a worker, in a temporary directory):
each subject's signup and first reports are sent ahead, then the qualifying reports one at a
time at a steady rate, straight to the `events` topic. For each, from the moment Kafka has
acknowledged it (the worker can read it from then on, a fetch round-trip away) to its
activation being on the `activations` topic (the record's timestamp, set by the worker's
producer) and to a consumer of that topic reading it.

With `--undecided N`, then: N more subjects whose windows open and stay undecided, the worker's
resident memory holding their state, and how long a restarted worker takes to restore that state
from the tables' changelogs and decide again (a new subject's activation on the topic).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.percentiles import percentiles
from usage_stream.bench import extra

if TYPE_CHECKING:
    from usage_stream.bench.sandbox import BenchSandbox, Process

TENANT, GROUP = "bench", "bench-activation"  # a tenant of the sandbox's keys; the worker's group
RULE = """
[activation]
lateness = "1h"
[[activation.rules]]
name = "bench"
subject = "user"
start = "signed_up"
window = "1d"
all_of = [{ event = "report_created", times = 3 }]
"""


@dataclass(frozen=True)
class Options:
    subjects: int = 300
    rate: float = 20.0  # qualifying events per second
    partitions: int = 6
    batch_seconds: float = 0.25
    keep: bool = False
    undecided: int = 0  # then this many open windows: memory and restart recovery
    batch_size: int = 10_000  # the worker's, as its settings' default


def _event(name: str, user: str, when: datetime, received: datetime) -> Any:
    from schemas import EnrichedEvent

    return EnrichedEvent(
        tenant=TENANT, type="track", message_id=str(uuid.uuid4()), event=name,
        account=f"acct-{user}", user_id=user, timestamp=when, received_at=received,
    )  # fmt: skip


def _percentiles(values: list[float]) -> dict[str, float]:
    p50, p95, p99 = percentiles(values)
    return {"p50": p50, "p95": p95, "p99": p99, "max": max(values)}


class _Watcher(threading.Thread):
    """Reads the `activations` topic: for each id, the record's timestamp and when it was read."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        super().__init__(daemon=True)
        from kafka import KafkaConsumer

        self.seen: dict[str, tuple[float, float]] = {}
        self.stop = threading.Event()
        self._consumer = KafkaConsumer(
            topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", fetch_max_wait_ms=50
        )

    def run(self) -> None:
        while not self.stop.is_set():
            for records in self._consumer.poll(timeout_ms=100).values():
                for record in records:
                    read = time.time()
                    self.seen[json.loads(record.value)["id"]] = (record.timestamp / 1000, read)
        self._consumer.close()


def run(options: Options) -> dict[str, Any]:
    from kafka import KafkaProducer

    from processors.activation.rules import outcome_id
    from runtime.topics import ensure_topics
    from usage_stream.bench.sandbox import BenchSandbox

    home = Path(tempfile.mkdtemp(prefix="usage-stream-bench-activation-"))
    (home / "rules.toml").write_text(RULE)
    sandbox = BenchSandbox(
        home, options.partitions, options.batch_size, options.batch_seconds, home / "rules.toml"
    )
    bootstrap = sandbox.broker.bootstrap
    print(f"starting a private Kafka broker on {bootstrap} (files in {home}) …", flush=True)
    try:
        sandbox.broker.start()
        sandbox.server.start()
        read_key = sandbox.read_keys[TENANT]
        ensure_topics(bootstrap, [sandbox.topic], options.partitions)
        print("starting the worker …", flush=True)
        worker = sandbox.worker(GROUP)
        worker.wait_ready(timeout=180)
        watcher = _Watcher(bootstrap, "activations")
        watcher.start()
        producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
        now = datetime.now(UTC)
        users = [f"user-{i}" for i in range(options.subjects)]
        for i, user in enumerate(users):  # the evidence before the qualifying event
            start = now - timedelta(hours=1, seconds=i)
            for name, offset in (("signed_up", 0), ("report_created", 1), ("report_created", 2)):
                e = _event(name, user, start + timedelta(seconds=offset), now)
                producer.send(sandbox.topic, key=e.partition_key.encode(), value=e.to_kafka())
        producer.flush()
        _wait_stored(worker.url, read_key, 3 * options.subjects)
        print(f"sending {options.subjects} qualifying events at {options.rate:g}/s …", flush=True)
        acked: dict[str, float] = {}
        for user in users:
            e = _event("report_created", user, datetime.now(UTC), datetime.now(UTC))
            producer.send(sandbox.topic, key=e.partition_key.encode(), value=e.to_kafka()).get(30)
            acked[outcome_id(TENANT, "bench", f"acct-{user}", user)] = time.time()
            time.sleep(1 / options.rate)
        deadline = time.monotonic() + 60
        while len(watcher.seen) < len(acked) and time.monotonic() < deadline:
            time.sleep(0.2)
        watcher.stop.set()
        print("timing feature counters …", flush=True)
        counters = _feature_freshness(producer, sandbox.topic, worker.url, read_key)
        state: dict[str, Any] = {}
        if options.undecided:
            state = _undecided(options.undecided, producer, sandbox, worker)
        producer.close()
        on_topic = [watcher.seen[i][0] - t for i, t in acked.items() if i in watcher.seen]
        read = [watcher.seen[i][1] - t for i, t in acked.items() if i in watcher.seen]
        if len(on_topic) < 2:
            raise RuntimeError(f"too few activations arrived; see {worker.log_file}")
        return {
            "activations": len(on_topic),
            "expected": len(acked),
            "batch_seconds": options.batch_seconds,
            "on_topic": _percentiles(on_topic),
            "read": _percentiles(read),
            "counters": _percentiles(counters),
            "undecided": state,
        }
    finally:
        sandbox.stop_all()
        if not options.keep:
            import shutil

            shutil.rmtree(home, ignore_errors=True)


def _undecided(
    subjects: int, producer: Any, sandbox: BenchSandbox, worker: Process
) -> dict[str, Any]:
    """`subjects` open windows: the worker's RSS holding them, and its restart until it decides
    a new subject (its tables restored from their changelogs first)."""
    from processors.activation.rules import outcome_id

    print(f"opening {subjects:,} windows that stay undecided …", flush=True)
    read_key = sandbox.read_keys[TENANT]
    before = _stored(worker.url, read_key)
    now = datetime.now(UTC)
    for i in range(subjects):
        e = _event("signed_up", f"open-{i}", now - timedelta(minutes=30), now)
        producer.send(sandbox.topic, key=e.partition_key.encode(), value=e.to_kafka())
    producer.flush()
    started = time.monotonic()
    _wait_stored(worker.url, read_key, before + subjects, timeout=3600)
    applied = time.monotonic() - started
    usage = worker.usage.sample()
    print(f"restarting the worker with {subjects:,} open windows in its tables …", flush=True)
    worker.stop(timeout=20)
    watcher = _Watcher(sandbox.broker.bootstrap, "activations")
    watcher.start()
    restarted = time.monotonic()
    worker = sandbox.worker(GROUP)  # the same data directory and log, on a new port
    worker.wait_ready(timeout=3600)
    ready = time.monotonic() - restarted
    probe = f"probe-{uuid.uuid4().hex[:8]}"
    at = datetime.now(UTC)
    for name in ("signed_up", "report_created", "report_created", "report_created"):
        e = _event(name, probe, at, at)
        producer.send(sandbox.topic, key=e.partition_key.encode(), value=e.to_kafka())
        at += timedelta(seconds=1)
    producer.flush()
    wanted = outcome_id(TENANT, "bench", f"acct-{probe}", probe)
    while wanted not in watcher.seen:
        if not worker.alive():
            raise RuntimeError(f"the worker exited; see {worker.log_file}")
        time.sleep(0.2)
    watcher.stop.set()
    return {
        "subjects": subjects,
        "seconds_to_apply": round(applied, 1),
        "worker_rss_bytes": usage.peak_rss,
        "restart_ready_seconds": round(ready, 1),
        "restart_decides_seconds": round(time.monotonic() - restarted, 1),
    }


def _counted(url: str, read_key: str, account: str, since: datetime) -> bool:
    query = urllib.parse.urlencode({"from": since.isoformat(), "account": account,
                                    "to": (since + timedelta(hours=1)).isoformat()})  # fmt: skip
    request = urllib.request.Request(
        f"{url}/v1/features/usage?{query}",
        headers={"Authorization": f"Bearer {read_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return bool(json.load(response))


def _feature_freshness(
    producer: Any, topic: str, url: str, read_key: str, samples: int = 30
) -> list[float]:
    """From an event acknowledged by Kafka to its feature counter answering in the API."""
    out = []
    for i in range(samples):
        now = datetime.now(UTC)
        e = _event("export_csv", f"fresh-{i}", now, now)
        producer.send(topic, key=e.partition_key.encode(), value=e.to_kafka()).get(30)
        sent = time.time()
        while not _counted(url, read_key, f"acct-fresh-{i}", now - timedelta(minutes=1)):
            time.sleep(0.02)
        out.append(time.time() - sent)
    return out


def _stored(url: str, read_key: str) -> int:
    request = urllib.request.Request(
        f"{url}/v1/events/counts",
        headers={"Authorization": f"Bearer {read_key}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return sum(int(row["events"]) for row in json.load(response))


def _wait_stored(url: str, read_key: str, events: int, timeout: float = 120) -> None:
    """Until the worker has stored this many events (so the next measurement starts quiet)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _stored(url, read_key) >= events:
            return
        time.sleep(0.5)
    raise RuntimeError("the worker did not store the events in time")


def report(result: dict[str, Any]) -> str:
    def line(label: str, p: dict[str, float]) -> str:
        ms = {k: f"{v * 1000:.0f} ms" for k, v in p.items()}
        return f"  {label:<48} p50 {ms['p50']:>7}  p95 {ms['p95']:>7}  p99 {ms['p99']:>7}" \
               f"  max {ms['max']:>7}"  # fmt: skip

    return "\n".join([
        f"detection latency, {result['activations']} of {result['expected']} activations"
        f" (worker batch window {result['batch_seconds']:g} s):",
        line("qualifying event in Kafka → activation on topic", result["on_topic"]),
        line("qualifying event in Kafka → read by a consumer", result["read"]),
        "feature counters:",
        line("event in Kafka → counted in /v1/features/usage", result["counters"]),
        *_undecided_lines(result["undecided"]),
    ])  # fmt: skip


def _undecided_lines(state: dict[str, Any]) -> list[str]:
    if not state:
        return []
    return [
        f"{state['subjects']:,} undecided subjects: applied in {state['seconds_to_apply']} s,"
        f" worker RSS {state['worker_rss_bytes'] / 2**20:,.0f} MiB; restarted, ready in"
        f" {state['restart_ready_seconds']} s, deciding again (tables restored) after"
        f" {state['restart_decides_seconds']} s",
    ]


def add_command(sub: Any) -> None:
    bench = sub.add_parser(
        "bench-activation",
        help="measure activation detection latency on a private local stack",
        description=(__doc__ or "").split("\n\n", 1)[-1].replace("\n", " "),
    )
    bench.add_argument("--subjects", type=int, default=300, help="activations to time (300)")
    bench.add_argument("--rate", type=float, default=20.0, help="qualifying events per s (20)")
    bench.add_argument("--partitions", type=int, default=6, help="partitions of `events` (6)")
    bench.add_argument(
        "--batch-seconds", type=float, default=0.25, help="worker batch window (0.25, the default)"
    )
    bench.add_argument("--keep", action="store_true", help="keep the temporary directory")
    bench.add_argument(
        "--undecided",
        type=int,
        default=0,
        metavar="N",
        help="then open N windows that stay undecided: the worker's memory, and its restart"
        " until it decides again (0: skip)",
    )
    bench.set_defaults(func=_command)


def _command(args: argparse.Namespace) -> int:
    extra.require()
    options = Options(
        args.subjects, args.rate, args.partitions, args.batch_seconds, args.keep, args.undecided
    )
    print(report(run(options)))
    return 0
