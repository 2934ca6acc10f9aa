"""A webhook receiver to try webhooks with: verifies each request's Standard Webhooks signature,
prints one line per record and keeps them as JSON lines. `usage-stream up` runs it for the demo.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from standardwebhooks import Webhook


def serve(host: str, port: int, secret: str, received: Path) -> None:
    """Until interrupted: 204 to a request whose signature verifies (recorded), 400 otherwise."""
    verifier = Webhook(secret)
    lock = threading.Lock()
    received.parent.mkdir(parents=True, exist_ok=True)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                record = verifier.verify(body, headers)
            except Exception as exc:  # any failure to verify: refused, said
                print(f"refused {headers.get('webhook-id', '?')}: {exc}", flush=True)
                self.send_response(400)
                self.end_headers()
                return
            with lock, received.open("a") as out:
                out.write(json.dumps({"webhook_id": headers["webhook-id"], **record}) + "\n")
            print(
                f"received {record.get('kind')} {record.get('tenant')}/{record.get('account')}"
                f" {record.get('meter')} {record.get('threshold')} (signature verified)",
                flush=True,
            )
            self.send_response(204)
            self.end_headers()

        def do_GET(self) -> None:  # readiness, as the other processes answer it
            self.send_response(200 if self.path in ("/healthz", "/readyz") else 404)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass  # one line per record, above, is enough

    with ThreadingHTTPServer((host, port), Handler) as server:
        print(f"webhook receiver on http://{host}:{port}, records in {received}", flush=True)
        server.serve_forever()
