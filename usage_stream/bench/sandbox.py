"""The benchmark's private stack: its own broker on free ports, and the processes it measures.

Nothing here touches a broker, port or data directory it did not create: everything lives in
one temporary directory and every process is stopped (and the directory removed) at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from schemas.config import EXAMPLE_CONFIG
from usage_stream.bench.procstat import Usage
from usage_stream.broker import LocalBroker
from usage_stream.stack import free_port, terminate, wait_ready

# One tenant per kind of load, so each phase's events are told apart in ClickHouse: the
# pre-loaded topic, the sustained end-to-end run, freshness at half load, and flat out.
PRELOAD_TENANT = "bench_pre"
TENANTS = (PRELOAD_TENANT, "bench", "bench_fresh", "bench_max")


def _clean_environment() -> dict[str, str]:
    """This machine's environment without USAGE_STREAM_* settings: the bench sets its own, so
    a developer's exported configuration can neither leak in nor point at their stack."""
    keep = {"USAGE_STREAM_KAFKA_CACHE"}
    return {k: v for k, v in os.environ.items() if not k.startswith("USAGE_STREAM_") or k in keep}


@dataclass
class Process:
    """One subprocess of the run, with its log and its resource usage."""

    name: str
    popen: subprocess.Popen[bytes]
    log_file: Path
    url: str = ""
    usage: Usage = field(init=False)

    def __post_init__(self) -> None:
        self.usage = Usage(self.name, self.popen.pid)

    def alive(self) -> bool:
        return self.popen.poll() is None

    def check(self) -> None:
        if not self.alive():
            tail = self.log_file.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def wait_ready(self, timeout: float = 120.0) -> None:
        try:
            wait_ready(self.url, self.popen, self.log_file, timeout)
        except RuntimeError:
            self.check()  # it exited: say so with the end of its log
            raise

    def stop(self, timeout: float = 30.0) -> None:
        self.usage.sample()  # the peak RSS is readable only while it runs
        terminate(self.popen, timeout)


class BenchStack:
    """A broker, topics, keys and the commands to start the worker, collectors and copier."""

    def __init__(
        self,
        home: Path,
        partitions: int,
        batch_size: int,
        batch_seconds: float,
        config: Path = EXAMPLE_CONFIG,
        compression: str = "zstd",
    ) -> None:
        self.home = home
        self.config = config
        self.compression = compression
        self.partitions = partitions
        self.broker = LocalBroker(home / "kafka", port=free_port(), controller_port=free_port())
        self.topic = "events"
        self.write_keys = {tenant: f"wk_{tenant}" for tenant in TENANTS}
        self.read_keys = {tenant: f"rk_{tenant}" for tenant in TENANTS}
        self.env = {
            **_clean_environment(),
            "USAGE_STREAM_KAFKA_BOOTSTRAP": self.broker.bootstrap,
            "USAGE_STREAM_EVENTS_TOPIC": self.topic,
            "USAGE_STREAM_INVALID_TOPIC": "events.invalid",
            "USAGE_STREAM_TOPIC_PARTITIONS": str(partitions),
            "USAGE_STREAM_WRITE_KEYS": json.dumps(self.write_keys),
            "USAGE_STREAM_READ_KEYS": json.dumps(self.read_keys),
            "USAGE_STREAM_CONFIG_FILE": str(config),
            "USAGE_STREAM_SINK_BATCH_SIZE": str(batch_size),
            "USAGE_STREAM_SINK_BATCH_SECONDS": str(batch_seconds),
            "USAGE_STREAM_KAFKA_COMPRESSION": compression,
            # The benchmark is the only sender; a per-key limit would measure the limiter.
            "USAGE_STREAM_RATE_LIMIT_EVENTS_PER_SECOND": "0",
        }
        self.processes: list[Process] = []

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], url: str = "") -> Process:
        log_file = self.home / "logs" / f"{name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # a Ctrl-C reaches the bench, which stops these in order
            )
        process = Process(name, popen, log_file, url)
        self.processes.append(process)
        return process

    def _command(self, command: str) -> list[str]:
        return [sys.executable, "-m", "usage_stream.cli", command]

    def collector(self, index: int) -> Process:
        port = free_port()
        env = {
            **self.env,
            "USAGE_STREAM_DATA_DIR": str(self.home / f"collector-{index}"),
            "USAGE_STREAM_COLLECTOR_PORT": str(port),
            # one process each: its CPU is read from its pid; --collectors runs more
            "USAGE_STREAM_COLLECTOR_PROCESSES": "1",
        }
        url = f"http://127.0.0.1:{port}"
        return self._spawn(f"collector-{index}", self._command("collector"), env, url)

    def worker(self, group: str, name: str = "worker") -> Process:
        """A worker with a data directory of its own, named after it, and the engine inside the
        process there, as the copier it is compared with has."""
        port = free_port()
        env = {
            **self.env,
            "USAGE_STREAM_DATA_DIR": str(self.home / name),
            "USAGE_STREAM_CLICKHOUSE_URL": self.worker_dsn(name),
            "USAGE_STREAM_WORKER_PORT": str(port),
            "USAGE_STREAM_CONSUMER_GROUP": group,
        }
        return self._spawn(name, self._command("worker"), env, f"http://127.0.0.1:{port}")

    def history(self, name: str, events: int) -> subprocess.Popen[bytes]:
        """Store `events` events in the tables of the worker `name`, before it starts."""
        argv = [
            sys.executable, "-m", "usage_stream.bench.history", "--dsn", self.worker_dsn(name),
            "--events", str(events), "--partitions", str(self.partitions),
        ]  # fmt: skip
        log_file = self.home / "logs" / f"history-{name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("ab") as out:
            return subprocess.Popen(
                argv, env=self.env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def worker_dsn(self, name: str) -> str:
        return f"chdb://{(self.home / name / 'clickhouse').resolve()}"

    def copier(self, group: str, batch_size: int, batch_seconds: float) -> Process:
        dsn = f"chdb://{(self.home / 'copier' / 'clickhouse').resolve()}"
        argv = [
            sys.executable, "-m", "usage_stream.bench.copier",
            "--bootstrap", self.broker.bootstrap, "--topic", self.topic, "--group", group,
            "--dsn", dsn, "--batch-size", str(batch_size), "--batch-seconds", str(batch_seconds),
        ]  # fmt: skip
        return self._spawn("copier", argv, self.env)

    def breakdown(self, mode: str, group: str, batch_size: int, batch_seconds: float) -> Process:
        """One of the consumers of bench.breakdown: `process` or `faust`."""
        home = (self.home / f"breakdown-{mode}").resolve()
        dsn = f"chdb://{home / 'clickhouse'}"
        argv = [
            sys.executable, "-m", "usage_stream.bench.breakdown", "--mode", mode,
            "--bootstrap", self.broker.bootstrap, "--topic", self.topic, "--group", group,
            "--dsn", dsn, "--datadir", str(home / "faust"), "--config", str(self.config),
            "--batch-size", str(batch_size), "--batch-seconds", str(batch_seconds),
        ]  # fmt: skip
        name = "processing without faust" if mode == "process" else "faust alone"
        return self._spawn(name, argv, self.env)

    def stop_all(self) -> None:
        """Every process this stack started, newest first, then its broker."""
        for process in reversed(self.processes):
            process.stop()
        self.broker.stop()
