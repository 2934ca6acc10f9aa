"""The local Kafka broker: fetched from Maven Central, formatted for KRaft, started and stopped."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from usage_stream.local_process import port_open, reap, spawn

log = logging.getLogger(__name__)

KAFKA_VERSION = "3.9.1"
DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy" / "kafka"
DEFAULT_CACHE = Path(
    os.environ.get("USAGE_STREAM_KAFKA_CACHE", Path.home() / ".cache" / "usage-stream")
)


class BrokerError(RuntimeError):
    pass


def fetch_jars(cache: Path = DEFAULT_CACHE) -> Path:
    """Copy the broker's jars (and an SLF4J backend) into the cache with Maven; once."""
    libs = cache / f"kafka-{KAFKA_VERSION}" / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    if shutil.which("mvn") is None:
        raise BrokerError("Maven (mvn) is needed to fetch the Kafka jars: apt-get install maven")
    libs.mkdir(parents=True, exist_ok=True)
    log.info("fetching Kafka %s jars into %s", KAFKA_VERSION, libs)
    result = subprocess.run(
        [
            "mvn",
            "-B",
            "-q",
            "-f",
            str(DEPLOY_DIR / "pom.xml"),
            "dependency:copy-dependencies",
            "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BrokerError(f"mvn could not fetch the Kafka jars:\n{result.stdout}{result.stderr}")
    marker.touch()
    return libs


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass(frozen=True)
class LocalBroker:
    """One single-node KRaft broker whose files all live in `home`."""

    home: Path
    port: int = 9092
    controller_port: int = 9093
    heap: str = "768m"
    cache: Path = DEFAULT_CACHE

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.home / "broker.pid"

    @property
    def log_file(self) -> Path:
        return self.home / "broker.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _alive(pid) else None

    def _configure(self) -> Path:
        self.home.mkdir(parents=True, exist_ok=True)
        properties = self.home / "server.properties"
        template = (DEPLOY_DIR / "server.properties").read_text()
        properties.write_text(
            template.format(
                port=self.port,
                controller_port=self.controller_port,
                log_dir=(self.home / "data").resolve(),
            )
        )
        return properties

    def _java(self, libs: Path, *args: str, heap: str = "256m") -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerError(
                "Java 17+ is needed to run the Kafka broker: apt-get install openjdk-17-jre"
            )
        return [
            java,
            f"-Xmx{heap}",
            f"-Xms{heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{DEPLOY_DIR / 'log4j.properties'}",
            "-cp",
            f"{libs}/*",
            *args,
        ]

    def _format(self, libs: Path, properties: Path) -> None:
        if (self.home / "data" / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        # one argument with "=": a random id may start with "-", which a separate one would not
        command = self._java(
            libs,
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={cluster_id}",
            "-c",
            str(properties),
        )
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise BrokerError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")

    def start(self, timeout: float = 90.0) -> None:
        """Start the broker and wait until it serves requests. Harmless when it already runs."""
        if self.pid() is not None:
            self.wait_ready(timeout)
            return
        if port_open(self.port):
            raise BrokerError(f"port {self.port} is taken by another process; set another port")
        libs = fetch_jars(self.cache)
        properties = self._configure()
        self._format(libs, properties)
        process = spawn(
            self._java(libs, "kafka.Kafka", str(properties), heap=self.heap),
            self.log_file,
            self.pid_file,
        )
        try:
            self.wait_ready(timeout, process)
        except BrokerError:
            self.stop()
            raise
        log.info("Kafka broker ready on %s (pid %d)", self.bootstrap, process.pid)

    def wait_ready(self, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
        from kafka import KafkaAdminClient
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise BrokerError(
                    f"the broker exited with {process.returncode}; see {self.log_file}"
                )
            if port_open(self.port):
                try:
                    admin = KafkaAdminClient(
                        bootstrap_servers=self.bootstrap, request_timeout_ms=5000
                    )
                    admin.list_topics()
                    admin.close()
                    return
                except KafkaError:
                    pass
            time.sleep(0.3)
        raise BrokerError(f"the broker was not ready within {timeout:.0f}s; see {self.log_file}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM for a controlled shutdown, SIGKILL if it takes longer than `timeout`."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        reap(pid)
        self.pid_file.unlink(missing_ok=True)
        log.info("Kafka broker stopped")
