"""The local ClickHouse server: the chDB engine in its own process, serving HTTP to every other.

chDB allows one process per data directory. Here one process owns the directory and serves the
ClickHouse HTTP (and native) protocol on 127.0.0.1, so the collector, workers and CLI reach it
with clickhouse-connect exactly as they reach a real ClickHouse server.

How it runs (chdb 4.4, engine 26.9): the module-level `chdb._chdb.query(sql, "TabSeparated",
path=...)` runs a whole clickhouse-local, which reads `./config.xml` (ports, users). Its one
session runs, in order: `SYSTEM START LISTEN TCP`, `SYSTEM START LISTEN HTTP`, a read of a FIFO
that lasts until something writes to it (the server stops then), `SYSTEM STOP LISTEN HTTP` and
`... TCP`. The listeners live only as long as that call. Its format argument becomes the
server's default HTTP output format: clickhouse-connect needs TabSeparated there.

The `default` user. clickhouse-local logs its session in as `default` with an empty password
(hard-coded in chDB's `LocalConnection`) from an address it reports as 127.0.0.1: `default`
can have no password, and no network rule tells it from a loopback client. And in this mode
the `file()` function reads any file without a grant. So `default` gets a profile with
`max_sessions_for_user = 1` (a `const` constraint: no client can raise it): the server's own
session is that one, from before the listeners open until after they close, so every login as
`default` over HTTP or TCP is refused (USER_SESSION_LIMIT_EXCEEDED). Its grants are only what
that session needs. Clients log in as `USER`, with a password generated once and kept in
`credentials.json` (mode 0600).
"""

from __future__ import annotations

import argparse
import base64
import errno
import hashlib
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import ClassVar

from schemas.settings import LOCAL_CLICKHOUSE_USER
from usage_stream.local_process import port_open, reap, spawn

log = logging.getLogger(__name__)

USER = LOCAL_CLICKHOUSE_USER
_MODULE = "usage_stream.clickhouse_server"  # also when run as __main__
# `default` is the server's own session, and only that one (see the module's docstring).
_USERS_XML = """<clickhouse>
    <profiles>
        <default/>
        <holder>
            <max_sessions_for_user>1</max_sessions_for_user>
            <constraints>
                <max_sessions_for_user><const/></max_sessions_for_user>
            </constraints>
        </holder>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>holder</profile>
            <quota>default</quota>
            <grants>
                <query>GRANT SYSTEM LISTEN ON *.*</query>
                <query>GRANT CREATE TEMPORARY TABLE ON *.*</query>
                <query>GRANT READ ON FILE</query>
            </grants>
        </default>
        <{user}>
            <password_sha256_hex>{password_sha256}</password_sha256_hex>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </{user}>
    </users>
    <quotas><default/></quotas>
</clickhouse>
"""
_CONFIG_XML = """<clickhouse>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http_port}</http_port>
    <tcp_port>{tcp_port}</tcp_port>
    <users_config>users.xml</users_config>
    <!-- a stopping server waits this long for a client's idle keep-alive connection; busy ones
         are closed between two requests (clickhouse-connect opens a new one, and retries a
         request on a connection the server closed) -->
    <keep_alive_timeout>1</keep_alive_timeout>
</clickhouse>
"""


class ClickHouseServerError(RuntimeError):
    pass


@dataclass(frozen=True)
class LocalClickHouse:
    """One chDB server whose files all live in `directory`: its data in `data/`, its config,
    credentials, pid file and logs beside it."""

    directory: Path
    http_port: int = 8123
    tcp_port: int = 9000

    user: ClassVar[str] = USER

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dsn(self) -> str:
        """What `connect(dsn, database, password)` and USAGE_STREAM_CLICKHOUSE_URL take."""
        return f"http://{self.user}@127.0.0.1:{self.http_port}"

    @property
    def password(self) -> str:
        """Generated on first use, then read from `credentials_file`."""
        return _credentials(self.credentials_file)

    @property
    def credentials_file(self) -> Path:
        return self.directory / "credentials.json"

    @property
    def pid_file(self) -> Path:
        return self.directory / "server.pid"

    @property
    def log_file(self) -> Path:
        """The server process's output, the engine's errors included. (chdb 4.4 writes nothing to
        a `<logger>` file but the line saying it shuts down, so none is configured.)"""
        return self.directory / "server.log"

    def pid(self) -> int | None:
        """The server's pid, if it runs (a pid file left by a dead one does not count)."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_server(pid, self.directory) else None

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until it answers. Harmless when it already runs."""
        if self.pid() is not None:
            self.wait_ready(timeout)
            return
        self.pid_file.unlink(missing_ok=True)
        for port in (self.http_port, self.tcp_port):
            if port_open(port):
                raise ClickHouseServerError(f"port {port} is taken by another process")
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        _credentials(self.credentials_file)  # before the server reads it
        command = [sys.executable, "-m", _MODULE, "serve", str(self.directory.resolve())]
        command += ["--http-port", str(self.http_port), "--tcp-port", str(self.tcp_port)]
        process = spawn(command, self.log_file, self.pid_file)
        try:
            self.wait_ready(timeout, process)
        except ClickHouseServerError:
            self.stop()
            raise
        log.info("ClickHouse server ready on %s (pid %d)", self.url, process.pid)

    def wait_ready(self, timeout: float, process: subprocess.Popen[bytes] | None = None) -> None:
        """Until a query with the password answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise ClickHouseServerError(
                    f"the server exited with {process.returncode}; see {self.log_file}"
                )
            if self._answers():
                return
            time.sleep(0.05)
        raise ClickHouseServerError(
            f"the server was not ready within {timeout:.0f}s; see {self.log_file}"
        )

    def _answers(self) -> bool:
        # urllib, not clickhouse-connect: its pool would keep the connection open, and an idle
        # connection holds a stopping server up (keep_alive_timeout)
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            self.url, data=b"SELECT 1", headers={"Authorization": f"Basic {token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=2) as response:
                return bool(response.read().strip() == b"1")
        except (urllib.error.URLError, OSError):
            return False

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: the server releases its holding query and the engine shuts down in order.
        SIGKILL if that takes longer than `timeout`."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _is_server(pid, self.directory) and time.monotonic() < deadline:
            reap(pid)
            time.sleep(0.05)
        if _is_server(pid, self.directory):
            log.warning("the ClickHouse server did not stop within %.0fs: killing it", timeout)
            os.kill(pid, signal.SIGKILL)
        reap(pid)
        self.pid_file.unlink(missing_ok=True)
        log.info("ClickHouse server stopped")


def _credentials(path: Path) -> str:
    """The password in `path`, written there (mode 0600) by the first caller."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return str(json.loads(path.read_text())["password"])
    password = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as out:
        json.dump({"user": USER, "password": password}, out)
    return password


def _is_server(pid: int, directory: Path) -> bool:
    """Whether `pid` is the server of `directory`: not gone, not a zombie (whose command line
    reads empty), not another process that got the pid since."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    expected = [_MODULE, "serve", str(directory.resolve())]
    return all(arg.encode() in argv for arg in expected)


# The server process.


def _configure(directory: Path, http_port: int, tcp_port: int) -> None:
    password = _credentials(directory / "credentials.json")
    digest = hashlib.sha256(password.encode()).hexdigest()
    fd = os.open(directory / "users.xml", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as users:
        users.write(_USERS_XML.format(user=USER, password_sha256=digest))
    (directory / "config.xml").write_text(
        _CONFIG_XML.format(http_port=http_port, tcp_port=tcp_port)
    )


def serve(directory: Path, http_port: int, tcp_port: int) -> int:
    """Run the server until SIGTERM or SIGINT. 0 when stopped so, 1 when the engine stopped
    by itself (its error is in the output)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    _configure(directory, http_port, tcp_port)
    data = directory / "data"
    data.mkdir(exist_ok=True)
    fifo = directory / "stop.fifo"
    if not fifo.is_fifo():
        fifo.unlink(missing_ok=True)
        os.mkfifo(fifo, 0o600)

    # chdb runs an in-memory query when imported, which reads ./config.xml too: not ours
    os.chdir(data)
    from chdb import _chdb

    os.chdir(directory)
    stopping = threading.Event()

    def release(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    signal.signal(signal.SIGTERM, release)
    signal.signal(signal.SIGINT, release)

    # the module-level query: it runs clickhouse-local whole, listeners included (the
    # `connect()` sessions never reach them); chdb's stub omits it
    query = _chdb.query  # type: ignore[attr-defined]
    holding = threading.Thread(
        target=query,
        args=(
            "SYSTEM START LISTEN TCP; SYSTEM START LISTEN HTTP;"
            f" SELECT count() FROM file('{_quote(fifo)}', 'LineAsString') FORMAT Null;"
            " SYSTEM STOP LISTEN HTTP; SYSTEM STOP LISTEN TCP;"
            # requests already read when the listeners stopped still log in: while this
            # session lasts, as `default` they are refused
            " SELECT sleep(1) FORMAT Null",
            "TabSeparated",  # the default HTTP format: clickhouse-connect needs this one
        ),
        kwargs={"path": str(data)},
        name="clickhouse",
    )
    holding.start()
    print(f"serving {directory} on 127.0.0.1:{http_port} (HTTP), :{tcp_port} (TCP)", flush=True)
    # In the main thread, in Python: a signal's handler only runs here, never inside the engine.
    while holding.is_alive() and not stopping.is_set():
        holding.join(0.2)
    if not holding.is_alive():
        print("the engine stopped by itself", flush=True)
        return 1
    deadline = time.monotonic() + 20
    while holding.is_alive() and time.monotonic() < deadline:
        _release(fifo)
        holding.join(0.2)
    if holding.is_alive():
        print("the engine did not stop within 20 s", flush=True)
        os._exit(1)
    print("stopped", flush=True)
    return 0


def _release(fifo: Path) -> None:
    """End the holding query: write a line to its FIFO and close it (EOF). Non-blocking: when
    the engine does not read yet, nothing happens (and the caller tries again)."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno != errno.ENXIO:  # no reader yet
            raise
        return
    try:
        os.write(fd, b"stop\n")
    finally:
        os.close(fd)


def _quote(path: Path) -> str:
    return str(path).replace("\\", "\\\\").replace("'", "\\'")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {_MODULE}")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="run the server in the foreground")
    run.add_argument("directory", type=Path)
    run.add_argument("--http-port", type=int, default=8123)
    run.add_argument("--tcp-port", type=int, default=9000)
    args = parser.parse_args(argv)
    return serve(args.directory.resolve(), args.http_port, args.tcp_port)


if __name__ == "__main__":
    sys.exit(main())
