"""The benchmark's private stack: its own broker and ClickHouse server on free ports, and the
processes it measures.

Nothing here touches a broker, server, port or data directory it did not create: everything
lives in one temporary directory and every process is stopped (and the directory removed) at the
end. Each consumer keeps its tables in a database of its own on the server, named after it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from runtime.procstat import Usage
from schemas.config import EXAMPLE_CONFIG
from usage_stream.bench.database import PASSWORD_VARIABLE
from usage_stream.broker import LocalBroker
from usage_stream.clickhouse_server import LocalClickHouse
from usage_stream.up import free_port, terminate, wait_ready

# One tenant per kind of load, so each phase's events are told apart in ClickHouse: the
# pre-loaded topic, the sustained end-to-end run, freshness at half load, and flat out.
PRELOAD_TENANT = "bench_pre"
TENANTS = (PRELOAD_TENANT, "bench", "bench_fresh", "bench_max")
# The ClickHouse server's name among the processes whose CPU every phase reads.
SERVER = "clickhouse server"


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

    def ready(self) -> bool:
        """Its /readyz answers 200 now (a worker: partitions held, tables restored)."""
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        try:
            wait_ready(self.url, self.popen, self.log_file, timeout)
        except RuntimeError:
            self.check()  # it exited: say so with the end of its log
            raise

    def stop(self, timeout: float = 30.0) -> None:
        self.usage.sample()  # the peak RSS is readable only while it runs
        terminate(self.popen, timeout)


class BenchSandbox:
    """A broker, a ClickHouse server, topics, keys and the commands to start the worker,
    collectors and copier."""

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
        self.server = LocalClickHouse(
            home / "clickhouse-server", http_port=free_port(), tcp_port=free_port()
        )
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

    def clickhouse_env(self, dsn: str, database: str) -> dict[str, str]:
        """The settings a worker reads them from; the bench's tools read the password alike."""
        return {
            **self.env,
            "USAGE_STREAM_CLICKHOUSE_URL": dsn,
            PASSWORD_VARIABLE: self.server.password,
            "USAGE_STREAM_CLICKHOUSE_DATABASE": database,
        }

    def worker(self, group: str, name: str = "worker", database: str = "") -> Process:
        """A `usage-stream worker` with a data directory of its own (faust's tables), named
        after it, writing to the server in `database` (its own, named after it, by default)."""
        port = free_port()
        env = {
            **self.clickhouse_env(self.server.dsn, database or database_of(name)),
            "USAGE_STREAM_DATA_DIR": str(self.home / name),
            "USAGE_STREAM_WORKER_PORT": str(port),
            "USAGE_STREAM_CONSUMER_GROUP": group,
        }
        return self._spawn(name, self._command("worker"), env, f"http://127.0.0.1:{port}")

    def history(self, name: str, events: int) -> subprocess.Popen[bytes]:
        """Store `events` events in the tables of the worker `name` on the server, before it
        starts."""
        argv = [
            sys.executable, "-m", "usage_stream.bench.history", "--dsn", self.server.dsn,
            "--database", database_of(name), "--events", str(events),
            "--partitions", str(self.partitions),
        ]  # fmt: skip
        log_file = self.home / "logs" / f"history-{name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        env = self.clickhouse_env(self.server.dsn, database_of(name))
        with log_file.open("ab") as out:
            return subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )

    def copier(self, group: str, batch_size: int, batch_seconds: float) -> Process:
        """The baseline copier, over HTTP to the server."""
        name = "copier"
        dsn, database = self.server.dsn, database_of(name)
        argv = [
            sys.executable, "-m", "usage_stream.bench.copier",
            "--bootstrap", self.broker.bootstrap, "--topic", self.topic, "--group", group,
            "--dsn", dsn, "--database", database,
            "--batch-size", str(batch_size), "--batch-seconds", str(batch_seconds),
        ]  # fmt: skip
        return self._spawn(name, argv, self.clickhouse_env(dsn, database))

    def breakdown(self, mode: str, group: str, batch_size: int, batch_seconds: float) -> Process:
        """One of the consumers of bench.breakdown: `process` (over HTTP to the server, as the
        worker it splits) or `faust`."""
        home = (self.home / f"breakdown-{mode}").resolve()
        database = f"breakdown_{mode}"
        argv = [
            sys.executable, "-m", "usage_stream.bench.breakdown", "--mode", mode,
            "--bootstrap", self.broker.bootstrap, "--topic", self.topic, "--group", group,
            "--dsn", self.server.dsn, "--database", database, "--datadir", str(home / "faust"),
            "--config", str(self.config),
            "--batch-size", str(batch_size), "--batch-seconds", str(batch_seconds),
        ]  # fmt: skip
        name = "processing without faust" if mode == "process" else "faust alone"
        return self._spawn(name, argv, self.clickhouse_env(self.server.dsn, database))

    def readback_env(self, name: str) -> tuple[list[str], dict[str, str]]:
        """The arguments and environment of bench.readback on the worker `name`'s tables."""
        database = database_of(name)
        args = ["--dsn", self.server.dsn, "--database", database]
        return args, self.clickhouse_env(self.server.dsn, database)

    def stop_all(self) -> None:
        """Every process this sandbox started, newest first, then its server and its broker
        (each stopped even when stopping one before it failed)."""
        try:
            for process in reversed(self.processes):
                process.stop()
        finally:
            try:
                self.server.stop()
            finally:
                self.broker.stop()


def database_of(name: str) -> str:
    """The database of the consumer `name` on the server: `worker-e2e` → `bench_worker_e2e`."""
    return "bench_" + name.replace("-", "_")
