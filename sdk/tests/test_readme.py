"""The README's SDK example runs as written (against a local stand-in for the collector)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from stand_in import serve

# the project README's SDK section: what a newcomer copies first
README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_sdk_example_runs_and_sends_its_three_calls() -> None:
    section = README.read_text().split("### From Python: the SDK", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    with serve() as stub:
        source = code.group(1).replace("http://127.0.0.1:8080", stub.url)
        printed = io.StringIO()
        namespace: dict[str, object] = {}
        with contextlib.redirect_stdout(printed):
            exec(compile(source, "README.md", "exec"), namespace)
        namespace["analytics"].shutdown(timeout=5)  # type: ignore[attr-defined]
    sent = [m["type"] for r in stub.requests for m in r.document()["batch"]]
    assert sent == ["track", "identify", "group"]
    assert "delivered=3" in printed.getvalue()
