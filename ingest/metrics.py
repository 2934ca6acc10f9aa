"""The collector's Prometheus metrics, every one built here on one injected registry."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable, Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from runtime.procstat import stat

# Request latency: from a fast 200 to the produce timeout (10 s by default) and a bit beyond.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Body sizes, compressed as sent: one event (~1 KiB) up to the default 512 KiB limit.
SIZE_BUCKETS = tuple(float(2**n) for n in range(8, 21, 2))
# Label values for events whose write key is unknown, and for tenants not named at start-up:
# the tenant label only ever takes values fixed by configuration.
UNKNOWN_TENANT, OTHER_TENANT = "unknown", "other"
_OPEN = "usage_stream_open_events"  # request.state key: (tenant label, events not yet settled)


def events_in(document: Any, call: str | None) -> int:
    """How many events a parsed body carries: the batch's length, or one for a single call
    (or for a body too malformed to count, which is still one thing the sender sent)."""
    if call is None and isinstance(document, dict) and isinstance(document.get("batch"), list):
        return len(document["batch"])
    return 1


class CollectorMetrics:
    """Counts every event the collector sees exactly once as received, then exactly once as
    accepted or rejected (by reason), so received = accepted + rejected always holds.

    The collector calls `received` once a body is parsed, then `accepted` after Kafka's ack or
    `rejected` from its error handler; anything left open when the response is sent (an
    unexpected 500) is counted as rejected with reason `internal_error`.
    """

    def __init__(
        self, registry: CollectorRegistry, tenants: Iterable[str] = (), in_group: bool = False
    ) -> None:
        """`in_group`: one of several processes on one port, in prometheus_client's
        multiprocess mode: /metrics adds up every process's values, and leaves out the
        process_* series (they would describe whichever process answered)."""
        # `_created` gauges would double the series and no dashboard or alert reads them.
        disable_created_metrics()
        self.registry = registry
        self._in_group = in_group
        self._tenants = frozenset(tenants)
        ns = "usage_stream_collector"
        self.requests = Counter(
            f"{ns}_requests", "HTTP requests answered.", ["endpoint", "code"], registry=registry
        )
        self.request_seconds = Histogram(
            f"{ns}_request_duration_seconds",
            "Time from request to response.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.request_bytes = Histogram(
            f"{ns}_request_size_bytes",
            "Request body size as sent (Content-Length, before gunzip), event endpoints only.",
            ["endpoint"],
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        self.events_received = Counter(
            f"{ns}_events_received",
            "Events in parsed request bodies.",
            ["tenant"],
            registry=registry,
        )
        self.events_accepted = Counter(
            f"{ns}_events_accepted",
            "Events acknowledged by Kafka and answered 200.",
            ["tenant"],
            registry=registry,
        )
        self.events_rejected = Counter(
            f"{ns}_events_rejected",
            "Events received but not accepted, by reason (the error kind).",
            ["reason"],
            registry=registry,
        )
        self.produce_seconds = Histogram(
            f"{ns}_kafka_produce_duration_seconds",
            "Time to produce one request's events and receive every Kafka ack.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.produce_errors = Counter(
            f"{ns}_kafka_produce_errors",
            "Requests whose events Kafka did not all acknowledge (answered 503).",
            registry=registry,
        )
        if not in_group:
            ProcessCollector(registry=registry)
        # Series exist at zero from the start: rate() and "no events received" alerts need them.
        for tenant in (*self._tenants, UNKNOWN_TENANT):
            self.events_received.labels(tenant)
            self.events_accepted.labels(tenant)
        self.produce_errors.inc(0)

    def _tenant_label(self, tenant: str | None) -> str:
        if tenant is None:
            return UNKNOWN_TENANT
        return tenant if tenant in self._tenants else OTHER_TENANT

    def received(self, request: Request, events: int, tenant: str | None) -> None:
        """Counts `events` as received; they stay open until `accepted` or `rejected`."""
        label = self._tenant_label(tenant)
        self.events_received.labels(label).inc(events)
        state = request.scope.setdefault("state", {})
        state[_OPEN] = (label, state.get(_OPEN, (label, 0))[1] + events)

    def accepted(self, request: Request) -> None:
        """Settles every open event of the request as accepted."""
        label, events = _settle(request.scope)
        if events:
            self.events_accepted.labels(label).inc(events)

    def rejected(self, request: Request, reason: str) -> None:
        """Settles every open event as rejected; `reason` is an error kind's code (a short,
        fixed vocabulary)."""
        _, events = _settle(request.scope)
        if events:
            self.events_rejected.labels(reason).inc(events)

    @contextmanager
    def producing(self) -> Iterator[None]:
        """Times a produce-and-wait-for-acks; any exception out of it counts as a produce error."""
        started = time.perf_counter()
        try:
            yield
        except Exception:  # not a cancellation: a client that hung up is not a Kafka error
            self.produce_errors.inc()
            raise
        finally:
            self.produce_seconds.observe(time.perf_counter() - started)

    def serve(self, app: FastAPI) -> None:
        """Adds request metrics to `app` and answers GET /metrics from this registry."""
        app.add_middleware(_RequestMetrics, metrics=self, app_routes=app)

        @app.get("/metrics", include_in_schema=False)
        async def metrics() -> Response:
            registry = self.registry
            if self._in_group:  # every process's values, read from their files
                registry = CollectorRegistry()
                MultiProcessCollector(registry)
                registry.register(GroupProcesses(os.environ[MULTIPROCESS_DIR]))
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


class GroupProcesses:
    """CPU and memory of every process of a collector group, labelled by pid: the process_*
    series prometheus_client's ProcessCollector gives for its own process only. The group's
    processes are those with values in the multiprocess directory, while they run."""

    def __init__(self, directory: str) -> None:
        self._directory = Path(directory)

    def collect(self) -> Iterator[Metric]:
        cpu = CounterMetricFamily(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            labels=["pid"],
        )
        rss = GaugeMetricFamily(
            "process_resident_memory_bytes", "Resident memory size in bytes.", labels=["pid"]
        )
        pids = {m.group(1) for p in self._directory.glob("*.db") if (m := _PID.search(p.name))}
        for pid in sorted(pids):
            try:
                reading = stat(int(pid))
            except OSError:
                continue  # gone; its counters stay in the files
            cpu.add_metric([pid], reading.cpu_seconds)
            rss.add_metric([pid], reading.rss_bytes)
        yield cpu
        yield rss


_PID = re.compile(r"_(\d+)\.db$")
# prometheus_client keeps each process's values in this directory when it is set at import
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"


def _settle(scope: MutableMapping[str, Any]) -> tuple[str, int]:
    label, events = scope.setdefault("state", {}).pop(_OPEN, (UNKNOWN_TENANT, 0))
    return str(label), int(events)


class _RequestMetrics:
    """Plain ASGI middleware (the collector streams request bodies; nothing here buffers)."""

    def __init__(self, app: ASGIApp, metrics: CollectorMetrics, app_routes: FastAPI) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = app_routes
        self._paths: frozenset[str] | None = None

    def endpoint(self, path: str) -> str:
        """The route's path, or `other`: a scanner's random URLs must not become label values."""
        if self._paths is None:
            self._paths = frozenset(str(getattr(r, "path", "")) for r in self.routes.routes)
        return path if path in self._paths else "other"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before answering

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            self._record(scope, status, time.perf_counter() - started)

    def _record(self, scope: Scope, status: int, seconds: float) -> None:
        endpoint = self.endpoint(str(scope.get("path", "")))
        m = self.metrics
        m.requests.labels(endpoint, str(status)).inc()
        m.request_seconds.labels(endpoint).observe(seconds)
        if endpoint.startswith("/v1/"):
            length = dict(scope.get("headers") or []).get(b"content-length", b"")
            if length.isdigit():
                m.request_bytes.labels(endpoint).observe(int(length))
        _, left_open = _settle(scope)
        if left_open:
            m.events_rejected.labels("internal_error").inc(left_open)
