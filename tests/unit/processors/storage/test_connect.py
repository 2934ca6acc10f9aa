"""connect() talks HTTP(S) to a ClickHouse server only: chdb://, the engine inside the process,
was removed, and a URL still naming it is refused before any client is made, with what to do."""

from __future__ import annotations

import pytest

from processors.storage import clickhouse
from processors.storage.clickhouse import connect


@pytest.fixture(autouse=True)
def no_client(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(**kwargs: object) -> None:
        raise AssertionError(f"a client was made: {kwargs}")

    monkeypatch.setattr(clickhouse.clickhouse_connect, "get_client", refuse)


def test_a_chdb_url_is_refused_saying_what_to_run_instead() -> None:
    with pytest.raises(ValueError) as refused:
        connect("chdb:///var/lib/usage-stream/clickhouse", "usage_stream")
    message = str(refused.value)
    assert "no longer supported" in message
    assert "usage-stream clickhouse start" in message
    assert "USAGE_STREAM_CLICKHOUSE_URL" in message


@pytest.mark.parametrize("dsn", ["tcp://127.0.0.1:9000", "127.0.0.1:8123", "clickhouse://x"])
def test_anything_but_http_or_https_is_refused(dsn: str) -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        connect(dsn, "usage_stream")
