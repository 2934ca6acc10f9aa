"""The README's and the docs' examples, run as a reader would: every ```bash block that talks to
the stack (the collector on :8080, the read API on :8081) or runs `usage-stream reconcile` or
`backfill`, against a real stack holding the demo's data, on whatever date the test runs. Each
must exit 0, every HTTP answer a success, and no read may come back empty: examples once asked
for a fixed month and answered zeros, `null` or `[]`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Corner
from usage_stream import demo

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TALKS_TO_THE_STACK = re.compile(r"127\.0\.0\.1:808[01]|usage-stream (reconcile|backfill)\b")
EMPTY = re.compile(r'^\s*\[\]\s*$|"data":\s*\[\]|"quantity":\s*null', re.MULTILINE)
# every curl of an example fails on an HTTP error, as a reader would notice one
PRELUDE = 'set -euo pipefail\ncurl() { command curl -sS --fail-with-body "$@"; echo; }\n'


def examples() -> list[tuple[str, str]]:
    """(where, script) of every runnable block, in document order."""
    found = []
    for document in DOCUMENTS:
        text = document.read_text()
        for match in re.finditer(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
            if TALKS_TO_THE_STACK.search(match.group(1)):
                line = text.count("\n", 0, match.start()) + 1
                found.append((f"{document.relative_to(ROOT)}:{line}", match.group(1)))
    return found


def test_the_documents_have_examples_to_run() -> None:
    assert len(examples()) >= 5, examples()


@pytest.mark.timeout(600)
def test_every_example_answers_with_the_demos_data(corner: Corner) -> None:
    write_keys, read_keys = demo.demo_keys()
    keys = {
        "USAGE_STREAM_WRITE_KEYS": json.dumps(write_keys),
        "USAGE_STREAM_READ_KEYS": json.dumps(read_keys),
    }
    worker = corner.service("worker", **keys).start()
    collector = corner.service("collector", **keys).start()
    failures = []
    try:
        demo.run(collector.url, worker.url, write_keys, read_keys, data_dir=corner.home)
        env = {
            **os.environ,
            **corner.env,
            **keys,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        }
        for where, script in examples():
            script = script.replace("http://127.0.0.1:8080", collector.url).replace(
                "http://127.0.0.1:8081", worker.url
            )
            done = subprocess.run(
                ["bash", "-c", PRELUDE + script],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            output = done.stdout + done.stderr
            if done.returncode != 0:
                failures.append(f"{where}: exit {done.returncode}\n{output[-2000:]}")
            elif not done.stdout.strip() or EMPTY.search(done.stdout):
                failures.append(f"{where}: answered nothing of the demo's data\n{output[-2000:]}")
    finally:
        collector.stop()
        worker.stop()
    assert not failures, "\n\n".join(failures)
