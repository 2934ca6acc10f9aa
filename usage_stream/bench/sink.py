"""The collector's Kafka sink alone: what producing costs before any HTTP or validation.

It publishes already-validated events through `KafkaEventSink.publish_blocking` exactly as the
collector does after judging a request (encode each event, kafka-python's `send()`, wait for
the acks), from as many threads as the load generator has connections, in batches of the same
size, to a topic nothing else reads. Its CPU per event is the floor under the collector's: no
request handling can make the collector cheaper than its sink. Run as its own process:
`python -m usage_stream.bench.sink ...`; prints one JSON line with its figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from ingest.sink import KafkaEventSink
from runtime.heap import settle
from runtime.procstat import own_cpu_seconds
from usage_stream.bench.events import EventSource


def measure(
    bootstrap: str, topic: str, events: int, batch: int, threads: int, compression: str
) -> dict[str, float]:
    sink = KafkaEventSink(bootstrap, topic, 30.0, topic, compression)
    made = list(EventSource("bench-sink").enriched("bench_sink", events + batch))
    sink.publish_blocking(made[:batch])  # connected, metadata fetched: not measured
    batches = [made[i : i + batch] for i in range(batch, len(made), batch)]
    settle()
    cpu, started = own_cpu_seconds(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(sink.publish_blocking, batches))
    seconds, cpu = time.perf_counter() - started, own_cpu_seconds() - cpu
    sink.close()
    sent = sum(len(b) for b in batches)
    return {"events": sent, "seconds": seconds, "cpu_seconds": cpu}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="produce bench events through the collector's sink")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--events", type=int, default=100_000)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--threads", type=int, default=8)
    p.add_argument("--compression", default="zstd")
    args = p.parse_args(argv)
    figures = measure(
        args.bootstrap, args.topic, args.events, args.batch, args.threads, args.compression
    )
    print(json.dumps(figures), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
