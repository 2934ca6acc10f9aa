"""A scripted HTTP server on a free local port: records each request, answers from a script."""

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
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes

    def document(self) -> Any:
        raw = gzip.decompress(self.body) if self.headers.get("Content-Encoding") else self.body
        return json.loads(raw)


@dataclass
class Answer:
    status: int = 200
    body: Any = field(default_factory=lambda: {"success": True})
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stub:
    url: str
    script: list[Answer]
    requests: list[Recorded]


@contextmanager
def serve(*script: Answer) -> Iterator[Stub]:
    """Answers the scripted answers in order, then repeats the last (200 if none)."""
    stub = Stub("", list(script) or [Answer()], [])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            stub.requests.append(Recorded(self.path, dict(self.headers.items()), body))
            answer = stub.script.pop(0) if len(stub.script) > 1 else stub.script[0]
            raw = (
                answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
            )
            self.send_response(answer.status)
            for name, value in {"Content-Type": "application/json", **answer.headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
