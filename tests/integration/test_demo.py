"""The demo `usage-stream up` runs, against a real stack: every event lands, and what it prints
has no negative quantity (a seat reported late once billed below zero)."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import Stack
from usage_stream import demo

pytestmark = pytest.mark.integration


@pytest.mark.timeout(300)
def test_the_demo_lands_and_prints_no_negative_number(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    write_keys, read_keys = demo.demo_keys()
    keys = {
        "USAGE_STREAM_WRITE_KEYS": json.dumps(write_keys),
        "USAGE_STREAM_READ_KEYS": json.dumps(read_keys),
    }
    worker = stack.service("worker", **keys).start()
    collector = stack.service("collector", **keys).start()
    try:
        landed = demo.run(collector.url, worker.url, write_keys, read_keys)
    finally:
        collector.stop()
        worker.stop()
    printed = capsys.readouterr().out
    assert sorted(landed) == sorted(write_keys)
    meters = [line for line in printed.splitlines() if re.match(r"\s{4}\w+\s+-?\d", line)]
    assert meters, printed
    assert not [line for line in meters if re.search(r"\s-\d", line)], printed
