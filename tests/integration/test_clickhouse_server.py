"""The local ClickHouse server (usage_stream.clickhouse_server): several processes on one chDB
data directory over HTTP, no way in without the password, stops and restarts keeping the data."""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from http.client import HTTPConnection, HTTPException
from pathlib import Path

import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from processors.model import Delivery, Event
from processors.storage.clickhouse import ClickHouse, connect, migrate, open_clickhouse
from processors.storage.staging import TABLE, Staging
from schemas import EnrichedEvent
from tests.harness import basic, http, wait_until
from usage_stream.clickhouse_server import ClickHouseServerError, LocalClickHouse
from usage_stream.up import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

# One client process: inserts its 5,000 rows in 50 inserts (so the two interleave), then counts.
CLIENT = textwrap.dedent("""
    import os, sys
    import clickhouse_connect
    tag = sys.argv[1]
    client = clickhouse_connect.get_client(
        dsn=os.environ["DSN"], password=os.environ["PASSWORD"], database="shared"
    )
    for first in range(0, 5000, 100):
        client.insert("t", [[tag, first + i] for i in range(100)], column_names=["client", "n"])
    rows = client.query("SELECT count(), sum(n) FROM t WHERE client = {c:String}", {"c": tag})
    print(*rows.result_rows[0])
""")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LocalClickHouse]:
    server = LocalClickHouse(tmp_path / "clickhouse-server", free_port(), free_port())
    server.start(timeout=60)
    try:
        yield server
    finally:
        server.stop()


def query(server: LocalClickHouse, sql: str, password: str | None = None) -> tuple[int, str]:
    """An HTTP query as the server's user, with its password unless another is given."""
    secret = server.password if password is None else password
    token = base64.b64encode(f"{server.user}:{secret}".encode()).decode()
    status, body = http("POST", server.url, sql.encode(), {"Authorization": f"Basic {token}"})
    return status, str(body).strip()


def test_two_processes_write_and_read_one_table(server: LocalClickHouse) -> None:
    status, _ = query(server, "CREATE DATABASE shared")
    assert status == 200
    status, _ = query(
        server,
        "CREATE TABLE shared.t (client String, n UInt32) ENGINE = MergeTree ORDER BY (client, n)",
    )
    assert status == 200
    env = {**os.environ, "DSN": server.dsn, "PASSWORD": server.password}
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, tag], env=env, stdout=subprocess.PIPE, text=True
        )
        for tag in ("a", "b")
    ]
    outputs = [client.communicate(timeout=60)[0].split() for client in clients]

    assert [client.returncode for client in clients] == [0, 0]
    assert outputs == [["5000", str(sum(range(5000)))]] * 2
    assert query(server, "SELECT count(), uniqExact(client, n) FROM shared.t") == (
        200,
        "10000\t10000",
    )


def test_nobody_in_without_the_password(server: LocalClickHouse) -> None:
    assert query(server, "SELECT currentUser()") == (200, server.user)
    refused = {
        "wrong password": query(server, "SELECT 1", password="not-it"),
        "no password": query(server, "SELECT 1", password=""),
    }
    for what, headers in {
        "no credentials": {},
        "default, no password": basic("default"),
    }.items():
        status, body = http("POST", server.url, b"SELECT file('/etc/hostname')", headers)
        refused[what] = (status, str(body))

    assert all(status != 200 for status, _ in refused.values()), refused
    assert "AUTHENTICATION_FAILED" in refused["wrong password"][1]
    # `default` is the server's own session, the one it may have (see the module docstring)
    assert "USER_SESSION_LIMIT_EXCEEDED" in refused["no credentials"][1]
    assert "USER_SESSION_LIMIT_EXCEEDED" in refused["default, no password"][1]
    for raise_the_limit in ("?max_sessions_for_user=9", "?profile=default"):
        status, body = http("POST", server.url + raise_the_limit, b"SELECT 1")
        assert status != 200, body
    # the native protocol: a ClientHello as `default` is answered with an exception packet
    assert native_hello(server.tcp_port, "default", "")[0] == 2
    assert native_hello(server.tcp_port, server.user, server.password)[0] == 0


def test_no_moment_at_start_or_stop_lets_default_in(tmp_path: Path) -> None:
    """Clients hammering as `default` while the server starts and stops three times: the
    server's own session exists before the listeners open and after they close."""
    server = LocalClickHouse(tmp_path / "ch", free_port(), free_port())
    done = threading.Event()
    answered: list[bytes] = []
    refused: list[bytes] = []

    def hammer() -> None:
        while not done.is_set():
            try:
                connection = HTTPConnection("127.0.0.1", server.http_port, timeout=5)
                while not done.is_set():
                    connection.request("POST", "/", body=b"SELECT 'in'")
                    response = connection.getresponse()
                    (answered if response.status == 200 else refused).append(response.read())
            except (OSError, HTTPException):
                time.sleep(0.001)

    hammers = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in hammers:
        thread.start()
    try:
        for _ in range(3):
            server.start(timeout=60)
            server.stop()
    finally:
        done.set()
        for thread in hammers:
            thread.join(10)
    assert answered == []
    # refused by the session limit, or (a request read as the listeners stop) with no answer
    assert refused and all(b"USER_SESSION_LIMIT_EXCEEDED" in body or not body for body in refused)


def native_hello(port: int, user: str, password: str) -> bytes:
    """The first bytes of the server's answer to a ClientHello: 0 ServerHello, 2 an exception."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while True:
            n, low = n >> 7, n & 0x7F
            out.append(low | (0x80 if n else 0))
            if not n:
                return bytes(out)

    def text(value: str) -> bytes:
        return varint(len(value.encode())) + value.encode()

    hello = varint(0) + text("test") + varint(24) + varint(1) + varint(54460)
    hello += text("default") + text(user) + text(password)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(hello)
        return sock.recv(64)


def test_data_survives_stop_and_start(server: LocalClickHouse) -> None:
    query(server, "CREATE TABLE kept (n UInt32) ENGINE = MergeTree ORDER BY n")
    query(server, "INSERT INTO kept SELECT number FROM numbers(1000)")
    first = server.pid()

    server.stop()
    assert server.pid() is None and not server.pid_file.exists()
    server.start(timeout=60)

    assert server.pid() not in (None, first)
    assert query(server, "SELECT count(), sum(n) FROM kept") == (200, "1000\t499500")


def test_sigterm_stops_it_cleanly_and_a_restart_sees_the_data(server: LocalClickHouse) -> None:
    query(server, "CREATE TABLE kept (n UInt32) ENGINE = MergeTree ORDER BY n")
    query(server, "INSERT INTO kept SELECT number FROM numbers(10)")
    pid = server.pid()
    assert pid is not None

    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: server.pid() is None, timeout=30, interval=0.05)
    _, status = os.waitpid(pid, 0)  # our child: its exit status says how it ended

    assert os.waitstatus_to_exitcode(status) == 0
    assert server.log_file.read_text().rstrip().endswith("stopped")
    server.start(timeout=60)  # the pid file it left is a dead one's: cleaned
    assert query(server, "SELECT count() FROM kept") == (200, "10")


def test_pid_and_start_are_truthful(tmp_path: Path) -> None:
    server = LocalClickHouse(tmp_path / "ch", free_port(), free_port())
    assert server.pid() is None
    server.directory.mkdir()
    server.pid_file.write_text(str(os.getpid()))  # alive, but not a server
    assert server.pid() is None
    server.start(timeout=60)
    try:
        pid = server.pid()
        assert pid is not None and pid != os.getpid()
        server.start(timeout=60)  # already running: nothing happens
        assert server.pid() == pid
        assert (server.credentials_file.stat().st_mode & 0o777) == 0o600
    finally:
        server.stop()
    assert server.pid() is None


def test_a_taken_port_is_reported(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = LocalClickHouse(tmp_path / "ch", taken.getsockname()[1], free_port())
        with pytest.raises(ClickHouseServerError, match="is taken"):
            server.start(timeout=10)
    assert server.pid() is None


def test_the_storage_layer_runs_on_it(server: LocalClickHouse) -> None:
    """connect() with the user in the DSN, the migrations, and the staged batch: a temporary
    table, which over HTTP lives in a session (clickhouse-connect gives each client one)."""
    client = connect(server.dsn, "usage_stream", server.password)
    assert migrate(client) and migrate(client) == []
    clickhouse = ClickHouse(client)
    when = datetime(2026, 3, 10, 12, tzinfo=UTC)
    batch = [
        Delivery(
            Event.of(EnrichedEvent(tenant="acme", type="track", message_id=str(uuid.uuid4()),
                                   event="api_call", account="a", user_id="u",
                                   timestamp=when, received_at=when)),
            0,
            offset,
        )
        for offset in range(100)
    ]  # fmt: skip

    Staging(clickhouse).load(batch, [True] * len(batch))

    assert clickhouse.query(f"SELECT count() FROM {TABLE}") == [(100,)]
    other = open_clickhouse(server.dsn, "usage_stream", server.password)
    with pytest.raises(DatabaseError, match="Unknown table"):
        other.query(f"SELECT count() FROM {TABLE}")  # another client's session: not its batch


def test_the_cli(tmp_path: Path) -> None:
    http_port, tcp_port = free_port(), free_port()
    env = {
        **os.environ,
        "USAGE_STREAM_DATA_DIR": str(tmp_path / "data"),
        "USAGE_STREAM_CLICKHOUSE_HTTP_PORT": str(http_port),
        "USAGE_STREAM_CLICKHOUSE_TCP_PORT": str(tcp_port),
    }

    def cli(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "usage_stream.cli", *args],
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    server = LocalClickHouse(tmp_path / "data" / "clickhouse-server", http_port, tcp_port)
    assert cli("clickhouse", "status").returncode == 3
    try:
        started = cli("clickhouse", "start")
        assert started.returncode == 0, started.stderr
        assert f"http://127.0.0.1:{http_port}" in started.stdout
        assert str(server.credentials_file) in started.stdout
        assert server.password not in started.stdout + started.stderr
        status = cli("clickhouse", "status")
        assert status.returncode == 0 and f"pid {server.pid()}" in status.stdout
        # the README's recipe: any command with the same data directory finds it, no URL given
        migrated = cli("migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert "applied" in migrated.stdout
        assert query(server, "SELECT count() > 0 FROM usage_stream.schema_migrations") == (200, "1")
    finally:
        stopped = cli("clickhouse", "stop")
    assert stopped.returncode == 0
    assert cli("clickhouse", "status").returncode == 3
    assert server.pid() is None
    # with the server stopped, a command says what to start instead of a connection error
    refused = cli("migrate")
    assert refused.returncode != 0 and "usage-stream clickhouse start" in refused.stderr
