"""`usage-stream up` keeps its stack up: a child that exits is started again, one that keeps
dying stops everything with a message."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from usage_stream_sdk.retry import Backoff

from usage_stream import up

QUICK = Backoff(base=0.001, cap=0.01)


def process(code: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", code])


def test_a_child_that_exits_is_started_again_and_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spawned: list[subprocess.Popen[bytes]] = []

    def spawn(name: str, env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
        spawned.append(process("import time; time.sleep(60)"))  # the new one stays up
        return spawned[-1]

    monkeypatch.setattr(up, "spawn", spawn)
    children = {"worker": process("raise SystemExit(3)")}
    returned: list[int] = []
    supervising = threading.Thread(
        target=lambda: returned.append(up.supervise(children, {}, tmp_path, QUICK, 0.01)),
        daemon=True,
    )
    supervising.start()
    deadline = time.monotonic() + 10
    while not spawned and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)  # several more rounds of supervision: the new one is left alone
    assert len(spawned) == 1 and children["worker"] is spawned[0]
    assert spawned[0].poll() is None and returned == []
    assert "the worker exited with code 3" in capsys.readouterr().out
    monkeypatch.setattr(up, "RESTART_LIMIT", 1)
    spawned[0].kill()  # and once more: past the limit, supervision ends
    supervising.join(10)
    assert returned == [1]


def test_a_child_that_keeps_dying_stops_everything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    started: list[str] = []

    def spawn(name: str, env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
        started.append(name)
        return process("raise SystemExit(7)")

    monkeypatch.setattr(up, "spawn", spawn)
    children = {"worker": process("raise SystemExit(7)")}
    assert up.supervise(children, {}, tmp_path, QUICK, poll_seconds=0.01) == 1
    assert started == ["worker"] * up.RESTART_LIMIT
    assert f"exited {up.RESTART_LIMIT + 1} times" in capsys.readouterr().out


def test_a_second_interrupt_while_stopping_leaves_no_child_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    children = {"worker": process(stubborn), "collector": process(stubborn)}
    stopping: list[subprocess.Popen[bytes]] = []

    def interrupted(child: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
        stopping.append(child)
        raise KeyboardInterrupt  # Ctrl-C again while the first child is being waited for

    monkeypatch.setattr(up, "terminate", interrupted)
    up._terminate_all(children)
    assert stopping == [children["collector"]]  # newest first, then hurried
    assert [c.poll() for c in children.values()] == [-9, -9]


def test_sigint_stops_up_even_when_started_with_sigint_ignored() -> None:
    """A shell's background job (`nohup usage-stream up &`) starts with SIGINT ignored; `up`
    once kept running through it. The child inherits SIG_IGN, as such a job would."""
    code = (
        "import time\n"
        "from usage_stream.up import stop_on_signals\n"
        "stop_on_signals()\n"
        "try:\n"  # the signal may come while 'ready' is still being written
        "    print('ready', flush=True)\n"
        "    time.sleep(30)\n"
        "except KeyboardInterrupt:\n"
        "    print('stopping', flush=True)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    child.send_signal(signal.SIGINT)
    out, _ = child.communicate(timeout=10)
    assert out == b"stopping\n"
    assert child.returncode == 0
