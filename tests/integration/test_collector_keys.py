"""A collector started without write keys says so once, naming the variable, instead of
answering every request 401 in silence."""

from __future__ import annotations

import pytest

from tests.conftest import Corner
from tests.harness import basic, http

pytestmark = pytest.mark.integration


def test_a_collector_without_write_keys_warns_once(corner: Corner) -> None:
    collector = corner.service("collector", USAGE_STREAM_WRITE_KEYS="{}",
                              USAGE_STREAM_COLLECTOR_PROCESSES="2").start()  # fmt: skip
    try:
        status, _ = http("POST", f"{collector.url}/v1/batch", {"batch": []}, basic("wk_any"))
        assert status == 401
    finally:
        collector.stop()
    log = collector.log_file.read_text()
    assert log.count("no write keys") == 1 and "USAGE_STREAM_WRITE_KEYS" in log
