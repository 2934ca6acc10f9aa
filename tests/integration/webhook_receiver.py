"""A webhook receiver for the tests, run as its own process: verifies every request's
signature with the Standard Webhooks library and logs what it got as JSON lines.

    python webhook_receiver.py PORT SECRET LOG CONTROL

CONTROL is a JSON file read at each request, so a test can change the answers while it runs:
  {"mode": "ok"}                               200 to everything
  {"mode": "fail", "status": 500}              that status to everything
  {"mode": "fail_first", "times": 1, "status": 429, "retry_after": "1"}
                                               the status to the first `times` requests of each
                                               webhook-id, then 200
  {"mode": "hang", "seconds": 60}              no answer at all (the connection held open)
GET /ping answers 200: the test waits for it before sending.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook


def main(port: int, secret: str, log_path: Path, control_path: Path) -> None:
    verifier = Webhook(secret)
    lock = threading.Lock()
    seen: dict[str, int] = {}

    def control() -> dict[str, Any]:
        try:
            return dict(json.loads(control_path.read_text()))
        except (OSError, ValueError):
            return {"mode": "ok"}

    def record(entry: dict[str, Any]) -> None:
        with lock, log_path.open("a") as out:
            out.write(json.dumps(entry) + "\n")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._answer(200 if self.path == "/ping" else 404, {})

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                verifier.verify(body, headers, json_parse=False)
                verified, error = True, ""
            except Exception as exc:  # any failure to verify is logged, and answered 400
                verified, error = False, f"{type(exc).__name__}: {exc}"
            webhook_id = headers.get("webhook-id", "")
            with lock:
                seen[webhook_id] = seen.get(webhook_id, 0) + 1
                nth = seen[webhook_id]
            how = control()
            mode = how.get("mode", "ok")
            status, extra = 200, {}
            if not verified:
                status = 400
            elif mode == "fail" or (mode == "fail_first" and nth <= int(how.get("times", 1))):
                status = int(how.get("status", 500))
                if how.get("retry_after"):
                    extra["Retry-After"] = str(how["retry_after"])
            entry = {
                "id": webhook_id, "timestamp": headers.get("webhook-timestamp"),
                "content_type": headers.get("content-type"), "verified": verified,
                "error": error, "body": body.decode(), "nth": nth, "at": time.time(),
                "answered": "hang" if mode == "hang" and verified else status,
            }  # fmt: skip
            record(entry)
            if mode == "hang" and verified:
                time.sleep(float(how.get("seconds", 60)))
                self.close_connection = True
                return
            self._answer(status, {"ok": status == 200}, extra)

        def _answer(
            self, status: int, body: dict[str, Any], extra: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            for name, value in (extra or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))
