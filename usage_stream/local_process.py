"""Local service processes (the Kafka broker, the ClickHouse server): started detached with a
log and a pid file, and reaped once they exit."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from pathlib import Path


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Something listens on `port`: a service to start there would fail."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def spawn(command: list[str], log_file: Path, pid_file: Path) -> subprocess.Popen[bytes]:
    """`command` in a session of its own, its output appended to `log_file`, its pid in
    `pid_file`."""
    with log_file.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in a terminal reaches us, and we stop it in order
        )
    pid_file.write_text(str(process.pid))
    return process


def reap(pid: int) -> None:
    """Collect our own child's exit status so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
