"""The demo `usage-stream up` runs, against a real stack: every event lands, what it prints has
no negative quantity (a seat reported late once billed below zero), and a second run on the
same data adds nothing (it once sent new messageIds and doubled every number)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Corner
from tests.harness import Service
from usage_stream import demo
from usage_stream.up import free_port

pytestmark = pytest.mark.integration


def _meter_lines(printed: str) -> list[str]:
    return [line for line in printed.splitlines() if re.match(r"\s{4}\w+\s+-?\d", line)]


@pytest.mark.timeout(400)
def test_the_demo_lands_prints_no_negative_number_and_a_second_run_adds_nothing(
    corner: Corner, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_keys, read_keys = demo.demo_keys()
    keys = {
        "USAGE_STREAM_WRITE_KEYS": json.dumps(write_keys),
        "USAGE_STREAM_READ_KEYS": json.dumps(read_keys),
    }
    data_dir = Path(corner.env["USAGE_STREAM_DATA_DIR"])
    env = {**corner.env, **keys}
    # the example configuration's webhook endpoints: the demo's receiver, on its fixed port
    receiver = Service("webhooks receive", env, demo.WEBHOOK_RECEIVER_PORT,
                       tmp_path / "receiver.log").start()  # fmt: skip
    port = free_port()
    sender = Service("webhooks run", env | {"USAGE_STREAM_WEBHOOKS_PORT": str(port)}, port,
                     tmp_path / "sender.log").start()  # fmt: skip
    worker = corner.service("worker", **keys).start()
    collector = corner.service("collector", **keys).start()
    try:
        landed = demo.run(collector.url, worker.url, write_keys, read_keys, data_dir=data_dir,
                          receiver=True)  # fmt: skip
        first = capsys.readouterr().out
        again = demo.run(collector.url, worker.url, write_keys, read_keys, data_dir=data_dir,
                         receiver=True)  # fmt: skip
        second = capsys.readouterr().out
    finally:
        for service in (collector, worker, sender, receiver):
            service.stop()
    assert sorted(landed) == sorted(write_keys)
    meters = _meter_lines(first)
    assert meters, first
    assert not [line for line in meters if re.search(r"\s-\d", line)], first
    # the same events again: every count and quantity as after the first run
    assert again == landed
    assert _meter_lines(second) == meters, second
    assert "adds nothing" in second
    stored = re.findall(r"tenant (\w+): (\d+) of (\d+) events stored", second)
    assert stored and all(n == of for _, n, of in stored), second
    # the plans' thresholds crossed, delivered signed to the receiver, which verified each
    for printed in (first, second):
        (verified,) = re.findall(r"verified the signatures of (\d+) of the (\d+) alert", printed)
        assert int(verified[1]) > 0 and verified[0] == verified[1], printed
