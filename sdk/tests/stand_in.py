"""A stand-in for the collector on a free local port: one scripted answer, every request kept."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def document(self) -> Any:
        raw = gzip.decompress(self.body) if self.headers.get("Content-Encoding") else self.body
        return json.loads(raw)


@dataclass
class StandIn:
    url: str
    requests: list[Request] = field(default_factory=list)


@contextmanager
def serve(
    status: int = 200, answer: Any = None, headers: dict[str, str] | None = None
) -> Iterator[StandIn]:
    """Answers every POST with `status` and `answer` (JSON, or bytes as they are; by default
    the collector's `{"success": true}`) plus `headers`."""
    if answer is None:
        answer = {"success": True}
    raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
    stand_in = StandIn("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            stand_in.requests.append(Request(self.path, dict(self.headers.items()), body))
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass  # no access log in the test output

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stand_in.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield stand_in
    finally:
        server.shutdown()
        server.server_close()
