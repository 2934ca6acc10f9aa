"""The demo `usage-stream up` runs, against a real stack: every event lands, what it prints has
no negative quantity (a seat reported late once billed below zero), and a second run on the
same data adds nothing (it once sent new messageIds and doubled every number)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Stack
from usage_stream import demo

pytestmark = pytest.mark.integration


def _meter_lines(printed: str) -> list[str]:
    return [line for line in printed.splitlines() if re.match(r"\s{4}\w+\s+-?\d", line)]


@pytest.mark.timeout(400)
def test_the_demo_lands_prints_no_negative_number_and_a_second_run_adds_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    write_keys, read_keys = demo.demo_keys()
    keys = {
        "USAGE_STREAM_WRITE_KEYS": json.dumps(write_keys),
        "USAGE_STREAM_READ_KEYS": json.dumps(read_keys),
    }
    worker = stack.service("worker", **keys).start()
    collector = stack.service("collector", **keys).start()
    try:
        landed = demo.run(collector.url, worker.url, write_keys, read_keys, data_dir=tmp_path)
        first = capsys.readouterr().out
        again = demo.run(collector.url, worker.url, write_keys, read_keys, data_dir=tmp_path)
        second = capsys.readouterr().out
    finally:
        collector.stop()
        worker.stop()
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
