"""`usage-stream up`: the whole stack on this machine, started in order and stopped in reverse."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

from usage_stream_sdk.retry import Backoff

from runtime.topics import ensure_topics
from schemas.config import EXAMPLE_CONFIG
from schemas.settings import Settings
from usage_stream import demo
from usage_stream.broker import LocalBroker
from usage_stream.clickhouse_server import LocalClickHouse

log = logging.getLogger(__name__)
RESTART = Backoff(base=1.0, cap=30.0)
RESTART_LIMIT = 5  # deaths of one child within RESTART_WINDOW before `up` gives up
RESTART_WINDOW = 120.0
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def local_broker(settings: Settings) -> LocalBroker:
    """The broker `kafka_bootstrap` names, run from local Kafka jars (controller: port+1)."""
    first = urlsplit(f"//{settings.kafka_bootstrap.split(',')[0]}")
    port = first.port or 9092
    return LocalBroker(settings.data_dir / "kafka", port=port, controller_port=port + 1)


def local_clickhouse(settings: Settings) -> LocalClickHouse:
    """The local ClickHouse server every process reaches when no URL names another."""
    return LocalClickHouse(
        settings.local_clickhouse_dir, settings.clickhouse_http_port, settings.clickhouse_tcp_port
    )


def _is_local(settings: Settings) -> bool:
    return urlsplit(f"//{settings.kafka_bootstrap.split(',')[0]}").hostname in LOCAL_HOSTS


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now, for a private broker or process."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, process: subprocess.Popen[bytes], log_file: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited with {process.returncode}; see {log_file}")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} was not ready within {timeout:.0f}s; see {log_file}")


def spawn(command: str, env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "usage_stream.cli", *command.split()],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # stopped by us, in order, not by the terminal's Ctrl-C
        )


def terminate(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _terminate_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """The children as they are now (restarted ones included), newest first. A second Ctrl-C
    while they stop hurries the rest (SIGKILL) rather than leaving any of them running."""
    hurry = False
    for process in reversed(list(children.values())):
        try:
            if hurry:
                process.kill()
                process.wait()
            else:
                terminate(process)
        except KeyboardInterrupt:
            print("stopping now …", flush=True)
            hurry = True
            process.kill()
            process.wait()


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_on_signals() -> None:
    """SIGTERM and SIGINT both stop `up`, in order. SIGINT is set too because a shell starts a
    background job (`nohup usage-stream up &`) with SIGINT ignored, and Python then leaves it so."""
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)


def up(settings: Settings, demo_run: bool = True, stay: bool = True, workers: int = 1) -> int:
    """The whole stack; `workers` workers split the partitions of `events` (the first on
    WORKER_PORT, the next on the ports after it), all clients of one ClickHouse."""
    stop_on_signals()
    env = dict(os.environ)
    write_keys = {t: k.get_secret_value() for t, k in settings.write_keys.items()}
    read_keys = {t: k.get_secret_value() for t, k in settings.read_keys.items()}
    if not write_keys:
        write_keys, read_keys = demo.demo_keys()
        env["USAGE_STREAM_WRITE_KEYS"] = json.dumps(write_keys)
        env["USAGE_STREAM_READ_KEYS"] = json.dumps(read_keys)
    if settings.config_file is None:
        env["USAGE_STREAM_CONFIG_FILE"] = str(EXAMPLE_CONFIG)
    collector_url = f"http://{settings.collector_host}:{settings.collector_port}"
    worker_url = f"http://{settings.worker_host}:{settings.worker_port}"
    # the demo's webhook endpoints (the example configuration's) answer on a local receiver
    receiver = demo_run and settings.config_file is None
    envs = (
        ({"webhook-receiver": env} if receiver else {})
        | {"collector": env, "webhooks": env}
        | {
            "worker" if n == 0 else f"worker-{n + 1}": env
            | {"USAGE_STREAM_WORKER_PORT": str(settings.worker_port + n)}
            for n in range(workers)
        }
    )
    urls = {"collector": collector_url,
            "webhook-receiver": f"http://127.0.0.1:{demo.WEBHOOK_RECEIVER_PORT}",
            "webhooks": f"http://{settings.webhooks_host}:{settings.webhooks_port}"} | {
        name: f"http://{settings.worker_host}:{child_env['USAGE_STREAM_WORKER_PORT']}"
        for name, child_env in envs.items() if name.startswith("worker")
    }  # fmt: skip
    logs = settings.data_dir / "logs"
    children: dict[str, subprocess.Popen[bytes]] = {}
    with ExitStack() as running:
        try:
            if not settings.clickhouse_url:
                server = local_clickhouse(settings)
                if server.pid() is None:
                    running.callback(server.stop)
                print(f"starting ClickHouse on {server.url} …", flush=True)
                server.start()
            if _is_local(settings):
                broker = local_broker(settings)
                if broker.pid() is None:
                    running.callback(broker.stop)
                print(f"starting Kafka on {broker.bootstrap} …", flush=True)
                broker.start()
            ensure_topics(
                settings.kafka_bootstrap,
                [settings.events_topic, settings.invalid_topic],
                settings.topic_partitions,
            )
            running.callback(_terminate_all, children)
            for name, child_env in envs.items():
                print(f"starting the {name} on {urls[name]} (log: {logs / name}.log) …", flush=True)
                children[name] = spawn(command_of(name), child_env, logs / f"{name}.log")
            for name in envs:  # workers of one group start together: they share partitions
                wait_ready(urls[name], children[name], logs / f"{name}.log", timeout=120)
            print(f"\nstack is up. ClickHouse: {settings.clickhouse_dsn}\n", flush=True)
            if demo_run:
                demo.run(
                    collector_url, worker_url, write_keys, read_keys,
                    data_dir=settings.data_dir, receiver=receiver,
                )  # fmt: skip
            if stay:
                print(
                    f"\ncollector {collector_url}/v1/batch · read API {worker_url}/docs"
                    "\nCtrl-C stops everything this command started.",
                    flush=True,
                )
                return supervise(children, envs, logs)
        except KeyboardInterrupt:
            print("\nstopping …", flush=True)
    return 0


def command_of(name: str) -> str:
    """The command a child runs: `worker-2` is a worker, `webhooks` the webhook sender."""
    special = {"webhooks": "webhooks run", "webhook-receiver": "webhooks receive"}
    return special.get(name, name.split("-")[0])


def supervise(
    children: dict[str, subprocess.Popen[bytes]],
    envs: dict[str, dict[str, str]],
    logs: Path,
    backoff: Backoff = RESTART,
    poll_seconds: float = 1.0,
) -> int:
    """Keep the stack up: a child that exits is logged with its exit code and started again
    after a backoff; one that dies RESTART_LIMIT times within RESTART_WINDOW seconds stops
    everything with a message (returns 1) rather than flapping forever."""
    deaths: dict[str, list[float]] = {}
    rng = random.Random()
    while True:
        time.sleep(poll_seconds)
        for name, process in list(children.items()):
            code = process.poll()
            if code is None:
                continue
            now = time.monotonic()
            recent = [t for t in deaths.get(name, []) if t > now - RESTART_WINDOW] + [now]
            deaths[name] = recent
            log_file = logs / f"{name}.log"
            if len(recent) > RESTART_LIMIT:
                print(
                    f"the {name} exited {len(recent)} times within {RESTART_WINDOW:.0f}s (last"
                    f" exit code {code}); stopping everything: see {log_file}",
                    flush=True,
                )
                return 1
            delay = backoff.delay(len(recent) - 1, None, rng)
            print(
                f"the {name} exited with code {code} (see {log_file}); starting it again"
                f" in {delay:.1f}s",
                flush=True,
            )
            time.sleep(delay)
            children[name] = spawn(command_of(name), envs.get(name, {}), log_file)
