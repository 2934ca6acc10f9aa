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


def test_the_sdk_refuses_at_the_call_names_as_long_as_the_collector_refuses() -> None:
    """The SDK cannot import the contract, so it keeps the limit itself: held equal here."""
    from typing import get_args

    from usage_stream_sdk import messages

    from schemas.events import Identifier

    (field,) = get_args(Identifier)[1:]
    (limit,) = [m.max_length for m in field.metadata if hasattr(m, "max_length")]
    assert limit == messages.MAX_NAME_LENGTH
