"""The HTTP load generator: Segment batches POSTed to collectors on 127.0.0.1, paced or flat out.

Run as its own process (`python -m usage_stream.bench.loadgen ...`, one JSON line on stdout)
so its CPU is not the system's under test and the GIL it holds is its own.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import itertools
import json
import resource
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

from runtime.percentiles import percentiles
from runtime.procstat import own_cpu_seconds
from usage_stream.bench.events import EventSource

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


@dataclass
class LoadResult:
    requests: int = 0
    events_sent: int = 0
    events_accepted: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    started: float = 0.0  # wall clock (time.time()) of the first request
    seconds: float = 0.0  # from the first request to the last answer
    latency_ms: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0

    @property
    def accepted_per_second(self) -> float:
        return self.events_accepted / self.seconds if self.seconds > 0 else 0.0


class _Shared:
    """What the sending threads share: the schedule, the id source and the tallies."""

    def __init__(self, source: EventSource, interval: float, stop_at: float, slots: int) -> None:
        self.source = source
        self.interval = interval  # seconds between batches, 0 for as fast as answers come
        self.stop_at = stop_at
        self.slots = slots  # most batches to send; 0 for no limit
        self.next_slot = itertools.count()
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.statuses: Counter[str] = Counter()
        self.sent = 0
        self.accepted = 0
        self.latencies: list[float] = []
        self.last_answer = self.t0


def _send_loop(shared: _Shared, url: str, key: str, batch: int) -> None:
    parts = urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS:
        raise ValueError(f"the load generator only sends to this machine, not {url}")
    headers = {
        "Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode(),
        "Content-Type": "application/json",
    }
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    while True:
        slot = next(shared.next_slot)
        due = shared.t0 + slot * shared.interval
        if (shared.slots and slot >= shared.slots) or due >= shared.stop_at:
            break
        if (wait := due - time.monotonic()) > 0:
            time.sleep(wait)
        elif time.monotonic() >= shared.stop_at:
            break
        body = shared.source.batch_body(batch)
        started = time.monotonic()
        try:
            connection.request("POST", parts.path or "/v1/batch", body, headers)
            response = connection.getresponse()
            answer = response.read()
            status = str(response.status)
            accepted = int(json.loads(answer).get("accepted", 0)) if status == "200" else 0
        except (OSError, http.client.HTTPException, ValueError):
            connection.close()  # reconnects on the next request
            status, accepted = "error", 0
            time.sleep(0.05)
        ended = time.monotonic()
        with shared.lock:
            shared.statuses[status] += 1
            shared.sent += batch
            shared.accepted += accepted
            shared.latencies.append((ended - started) * 1000)
            shared.last_answer = max(shared.last_answer, ended)
    connection.close()


def generate(
    urls: list[str],
    write_key: str,
    *,
    rate: float,
    duration: float,
    batch: int = 100,
    connections: int = 8,
    run: str = "bench",
    start_id: int = 0,
    max_events: int = 0,
) -> LoadResult:
    """POST batches for `duration` seconds: `rate` events/s on a fixed schedule (an open loop,
    late batches catch up), or with rate 0 each connection sends as soon as it is answered."""
    source = EventSource(run, start_id)
    interval = batch / rate if rate > 0 else 0.0
    started_wall = time.time()
    shared = _Shared(source, interval, time.monotonic() + duration, -(-max_events // batch))
    threads = [
        threading.Thread(
            target=_send_loop, args=(shared, urls[i % len(urls)], write_key, batch), daemon=True
        )
        for i in range(connections)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    p50, p95, p99 = percentiles(shared.latencies)
    return LoadResult(
        requests=sum(shared.statuses.values()),
        events_sent=shared.sent,
        events_accepted=shared.accepted,
        statuses=dict(shared.statuses),
        started=started_wall,
        seconds=shared.last_answer - shared.t0,
        latency_ms={"p50": p50, "p95": p95, "p99": p99},
        cpu_seconds=own_cpu_seconds(),
        peak_rss_bytes=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="POST synthetic Segment batches to local collectors")
    p.add_argument("--url", action="append", required=True, help="a collector's /v1/batch URL")
    p.add_argument("--key", required=True, help="write key")
    p.add_argument("--rate", type=float, default=0.0, help="events/s; 0 = as fast as answered")
    p.add_argument("--duration", type=float, required=True, help="seconds")
    p.add_argument("--batch", type=int, default=100, help="events per request")
    p.add_argument("--connections", type=int, default=8, help="concurrent keep-alive connections")
    p.add_argument("--run", default="bench", help="prefix of the message ids")
    p.add_argument("--start-id", type=int, default=0, help="first message id number")
    p.add_argument("--max-events", type=int, default=0, help="stop after this many; 0 = no limit")
    args = p.parse_args(argv)
    result = generate(
        args.url,
        args.key,
        rate=args.rate,
        duration=args.duration,
        batch=args.batch,
        connections=args.connections,
        run=args.run,
        start_id=args.start_id,
        max_events=args.max_events,
    )
    print(json.dumps(asdict(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
