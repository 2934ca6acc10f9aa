"""The bench's own dependencies, the `bench` extra: checked before `usage-stream bench` or
`bench-activation` starts, so a runtime-only install says what to install instead of failing
part-way."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

INSTALL = "pip install 'usage-stream[bench]'"


def py_spy() -> str | None:
    """py-spy beside this interpreter (the bench extra installs it), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def missing() -> list[str]:
    """What pyproject.toml's `bench` extra installs that is not here (py-spy is a program)."""
    return [] if py_spy() is not None else ["py-spy"]


def require() -> None:
    """Exit with the command to run when the extra is not installed."""
    if absent := missing():
        raise SystemExit(f"the bench needs {', '.join(absent)}, not installed: {INSTALL}")
