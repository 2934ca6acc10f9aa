"""`usage-stream backfill` and `reconcile` refuse what they cannot mean, before any ClickHouse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from schemas.config import EXAMPLE_CONFIG, load_config


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "USAGE_STREAM_DATA_DIR": str(tmp_path)}
    return subprocess.run(
        [sys.executable, "-m", "usage_stream.cli", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("command", ["reconcile", "backfill"])
def test_a_reversed_range_is_refused(tmp_path: Path, command: str) -> None:
    found = cli(tmp_path, command, "--from", "2026-12-05", "--to", "2026-11-01")
    assert found.returncode != 0 and "is not before --to" in found.stderr


def test_an_unknown_meter_is_named_with_the_meters_there_are(tmp_path: Path) -> None:
    found = cli(tmp_path, "backfill", "--from", "2026-11-01", "--to", "2026-12-01",
                "--meter", "nope")  # fmt: skip
    assert found.returncode != 0 and "unknown meter(s): nope" in found.stderr
    for meter in load_config(EXAMPLE_CONFIG).meters:  # the configuration `up` runs with
        assert meter.name in found.stderr


def test_without_a_config_file_the_example_one_is_used_like_up(tmp_path: Path) -> None:
    found = cli(tmp_path, "reconcile", "--from", "2026-11-01", "--to", "2026-12-01")
    # it gets as far as ClickHouse, which is not running here: it says how to start it
    assert found.returncode != 0 and "usage-stream clickhouse start" in found.stderr
    assert "no meters" not in found.stderr
