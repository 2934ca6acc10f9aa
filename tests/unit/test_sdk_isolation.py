"""The SDK stays light: importing it loads none of the server's dependencies."""

from __future__ import annotations

import subprocess
import sys

CHECK = (
    "import sys, usage_stream_sdk; assert not {'fastapi','faust','chdb','pydantic_settings',"
    "'prometheus_client','kafka'} & set(sys.modules)"
)


def test_importing_the_sdk_loads_no_server_dependency() -> None:
    # a fresh interpreter: in this one the server's tests have imported all of them already
    done = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
