"""A progress bar on stderr for long commands; silent when stderr is not a terminal but CI."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO = sys.stderr, width: int = 30) -> None:
        self._label = label
        self._stream = stream
        self._width = width
        self._started = time.monotonic()
        self._tty = stream.isatty()

    def __call__(self, step: int, steps: int, what: str) -> None:
        done = int(self._width * step / max(steps, 1))
        bar = "#" * done + "-" * (self._width - done)
        elapsed = time.monotonic() - self._started
        line = f"{self._label} [{bar}] {step}/{steps} {what} {elapsed:.1f}s"
        if self._tty:
            self._stream.write("\r" + line + ("\n" if step >= steps else ""))
        elif step >= steps or step == 1 or step % max(steps // 10, 1) == 0:
            self._stream.write(line + "\n")
        self._stream.flush()
