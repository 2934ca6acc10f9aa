"""CPU time and memory of running processes, read from /proc (Linux only)."""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Stat:
    """One reading of /proc/<pid>/stat."""

    cpu_seconds: float  # user + system, all its threads (chDB's and the JVM's included)
    rss_bytes: int  # resident set now


def stat(pid: int) -> Stat:
    """The process's CPU so far and its resident set; raises OSError once it has gone."""
    text = Path(f"/proc/{pid}/stat").read_text()
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    fields = text[text.rindex(")") + 2 :].split()
    return Stat((int(fields[11]) + int(fields[12])) / _TICKS, int(fields[21]) * _PAGE)


def cpu_seconds(pid: int) -> float:
    """User + system CPU of the process, all its threads."""
    return stat(pid).cpu_seconds


def own_cpu_seconds() -> float:
    """User + system CPU of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_bytes(pid: int) -> int:
    """The resident set's high-water mark (VmHWM) over the life of the process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class Usage:
    """What one process used: CPU seconds so far and its peak RSS, kept after it exits."""

    name: str
    pid: int
    cpu: float = 0.0
    peak_rss: int = 0

    def sample(self) -> Usage:
        """Refresh from /proc; a process that has gone keeps its last reading."""
        try:
            self.cpu = cpu_seconds(self.pid)
            self.peak_rss = max(self.peak_rss, peak_rss_bytes(self.pid))
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            pass
        return self


def machine_load() -> tuple[float, float, float]:
    """The 1, 5 and 15 minute load averages: how busy the machine was around a run."""
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return float(one), float(five), float(fifteen)
