"""A collector of several processes on one port: shared load, one set of metrics, one death."""

from __future__ import annotations

import os
import re
import signal
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import Corner
from tests.harness import basic, http, wait_until

pytestmark = pytest.mark.integration


def children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(p) for p in found]


def accepted_total(text: str) -> float:
    return sum(
        float(m.group(1))
        for m in re.finditer(r'^usage_stream_collector_events_accepted_total\{[^}]*\} (\S+)$',
                             text, re.MULTILINE)
    )  # fmt: skip


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_processes_share_the_port_and_the_metrics_and_die_with_the_collector(
    corner: Corner,
) -> None:
    collector = corner.service("collector", USAGE_STREAM_COLLECTOR_PROCESSES="2").start()
    try:
        assert collector.process is not None
        pid = collector.process.pid
        group = wait_until(lambda: len(children(pid)) >= 2 and children(pid), 30)

        def send(i: int) -> int:
            batch = [{"type": "track", "messageId": str(uuid.uuid4()), "userId": f"u-{i}",
                      "event": "api_call", "properties": {"n": i}} for _ in range(5)]  # fmt: skip
            body = {"batch": batch, "sentAt": datetime.now(UTC).isoformat()}
            status, answer = http("POST", f"{collector.url}/v1/batch", body,
                                  basic(corner.write_key))  # fmt: skip
            assert status == 200, answer
            return int(answer["accepted"])

        with ThreadPoolExecutor(8) as pool:
            sent = sum(pool.map(send, range(80)))
        assert sent == 400
        # whichever process answers /metrics, it counts the events of every process
        for _ in range(6):
            status, text = http("GET", f"{collector.url}/metrics")
            assert status == 200 and accepted_total(text) == sent
            assert text.count("process_resident_memory_bytes{pid=") >= 2
        # a SIGKILLed collector takes its processes with it: the port is free for a restart
        os.kill(pid, signal.SIGKILL)
        collector.process.wait()
        wait_until(lambda: not any(Path(f"/proc/{p}").exists() for p in group), 10)
        wait_until(lambda: not listening(collector.port), 10)
        collector.start()
        time.sleep(0.5)
        assert send(1000) == 5
    finally:
        collector.stop()
