"""The webhook sender process (`usage-stream webhooks run`): the sender, its lanes, and a small
HTTP server beside them for /metrics, /healthz and /readyz."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from processors.alerts.setup import ALERTS_TOPIC_CONFIG
from processors.storage.clickhouse import open_clickhouse
from processors.webhooks.deliveries import DeliveryLog
from processors.webhooks.metrics import WebhookMetrics
from processors.webhooks.model import endpoints
from processors.webhooks.sender import Sender
from runtime.topics import ensure_topics_with_config, when_kafka_answers
from schemas.config import load_config
from schemas.settings import Settings

log = logging.getLogger(__name__)


def run_webhooks(settings: Settings) -> None:
    """Deliver every usage alert of `alerts_topic` to its tenant's endpoints until SIGTERM or
    SIGINT. The topic is created (compacted) if it does not exist yet."""
    product = load_config(settings.config_file)
    configured = endpoints(product.webhooks)
    if not configured:
        log.warning(
            "no [[webhooks]] in %s: alerts are read and left undelivered",
            settings.config_file or "(no config file)",
        )
    clickhouse = open_clickhouse(
        settings.clickhouse_dsn, settings.clickhouse_database, settings.clickhouse_secret()
    )
    when_kafka_answers(
        settings.kafka_bootstrap,
        f"creating {settings.alerts_topic}",
        lambda: ensure_topics_with_config(
            settings.kafka_bootstrap,
            settings.alerts_topic,
            settings.topic_partitions,
            True,
            ALERTS_TOPIC_CONFIG,
        ),
    )
    registry = CollectorRegistry()
    sender = Sender(
        settings.kafka_bootstrap,
        settings.alerts_topic,
        settings.webhooks_group,
        configured,
        DeliveryLog(clickhouse),
        WebhookMetrics(registry),
        settings.webhooks_backoff_base_seconds,
        settings.webhooks_backoff_cap_seconds,
    )
    server = status_server(
        settings.webhooks_host, settings.webhooks_port, registry, sender.ready.is_set
    )
    threading.Thread(target=server.serve_forever, name="webhooks-status", daemon=True).start()

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("stopping (signal %d)", signum)
        sender.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "delivering %s (group %s) to %d endpoint(s); /metrics on http://%s:%d",
        settings.alerts_topic, settings.webhooks_group, len(configured),
        settings.webhooks_host, settings.webhooks_port,
    )  # fmt: skip
    try:
        sender.run()
    finally:
        server.shutdown()
        server.server_close()


def status_server(
    host: str, port: int, registry: CollectorRegistry, ready: Callable[[], bool]
) -> ThreadingHTTPServer:
    """/metrics in Prometheus' text format; /healthz always 200; /readyz 200 once the sender
    has joined its group and resumed what its partitions had pending, else 503."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._answer(200, b'{"status": "ok"}', "application/json")
            elif path == "/readyz":
                ok = ready()
                body = b'{"ready": true}' if ok else b'{"ready": false}'
                self._answer(200 if ok else 503, body, "application/json")
            else:
                self._answer(404, b'{"detail": "Not Found"}', "application/json")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every 15 s are not news

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
