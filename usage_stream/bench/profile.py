"""Sampling profiles of the measured processes with py-spy, summed up as hot-spot tables."""

from __future__ import annotations

import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

from usage_stream.bench.extra import INSTALL, py_spy


class Profiler:
    """`py-spy record` on one process for a while, in raw (collapsed stack) format.

    --nonblocking reads the target's memory without pausing it, so the profile costs the
    measured process almost nothing; the price is an occasional torn stack, which the
    summaries tolerate."""

    def __init__(self, pid: int, output: Path, seconds: float, rate: int = 50) -> None:
        binary = py_spy()
        if binary is None:
            raise RuntimeError(f"py-spy is not installed: {INSTALL}")
        self.output = output
        argv = [binary, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds)))]
        argv += ["--rate", str(rate), "--format", "raw", "--nonblocking", "--output", str(output)]
        self._process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def finish(self, timeout: float = 30.0) -> dict[str, Any]:
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.terminate()
            self._process.wait()
        return summarise(self.output) if self.output.exists() else {}


def _frame(raw: str) -> str:
    """'function (path/to/module.py:123)' → 'module.py:function'."""
    name, _, where = raw.partition(" (")
    module = where.rsplit("/", 1)[-1].split(":", 1)[0]
    return f"{module}:{name.strip()}"


def summarise(collapsed: Path, top: int = 15) -> dict[str, Any]:
    """The functions most samples were in (self) and under (inclusive), as shares of all
    samples of busy threads. Idle threads (waiting on a selector or a lock) are left out."""
    own: Counter[str] = Counter()
    under: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames or _idle(frames[-1]):
            continue
        n = int(count)
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            under[name] += n
    share = {name: round(n / total, 3) for name, n in own.most_common(top)} if total else {}
    inclusive = {name: round(n / total, 3) for name, n in under.most_common(top)} if total else {}
    return {"busy_samples": total, "self": share, "inclusive": inclusive}


# Frames a thread sits in while it waits (selectors, locks, sleeps, an idle executor thread).
_IDLE = ("select", "poll", "epoll", "wait", "_wait_for_tstate_lock", "acquire", "sleep", "_worker")


def _idle(frame: str) -> bool:
    """A thread parked in a selector, a lock or a sleep is waiting, not working."""
    return frame.rsplit(":", 1)[-1].rsplit(".", 1)[-1] in _IDLE
