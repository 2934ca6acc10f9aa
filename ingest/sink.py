"""Where events go: the EventSink boundary, its Kafka and in-memory implementations.

Accepted events go to the events topic and rejected ones to the invalid topic, in one call
whose success means Kafka holds both.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

from kafka import KafkaProducer
from kafka.errors import KafkaError

from ingest.partitioner import KeyHashPartitioner
from ingest.validation import Rejection
from schemas import EnrichedEvent
from schemas.settings import DEFAULT_LINGER_MS


class SinkUnavailable(Exception):
    """The sink did not acknowledge every event; the sender must retry (HTTP 503)."""


class EventSink(Protocol):
    async def publish(
        self, events: Sequence[EnrichedEvent], rejected: Sequence[Rejection] = ()
    ) -> None:
        """Return only once every event and every rejection is durably held; raise
        SinkUnavailable otherwise."""
        ...

    def ready(self) -> bool: ...

    def close(self) -> None: ...


class KafkaEventSink:
    """Produces with acks=all and idempotence, keyed tenant:account, and waits for every ack.
    Rejections go to `invalid_topic`, keyed by tenant, with the reason in headers."""

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        timeout_seconds: float,
        invalid_topic: str,
        compression: str = "none",
        linger_ms: int = DEFAULT_LINGER_MS,
    ) -> None:
        self._bootstrap = bootstrap
        self._linger_ms = linger_ms
        self._compression = None if compression == "none" else compression
        self._topic = topic
        self._invalid_topic = invalid_topic
        self._timeout = timeout_seconds
        self._lock = threading.Lock()
        self._producer: KafkaProducer | None = None

    def _connected_producer(self) -> KafkaProducer:
        """Made on first use: the collector starts (and says not-ready) while Kafka is down."""
        with self._lock:
            if self._producer is None:
                timeout_ms = int(self._timeout * 1000)
                self._producer = KafkaProducer(
                    bootstrap_servers=self._bootstrap.split(","),
                    acks="all",
                    enable_idempotence=True,
                    # Concurrent requests share per-partition batches: fewer, larger produce
                    # requests and fewer sender wake-ups, for at most `linger_ms` more per
                    # request.
                    linger_ms=self._linger_ms,
                    batch_size=1024 * 1024,
                    partitioner=KeyHashPartitioner(),
                    compression_type=self._compression,
                    bootstrap_timeout_ms=timeout_ms,
                    max_block_ms=timeout_ms,
                    request_timeout_ms=timeout_ms,
                    delivery_timeout_ms=timeout_ms + 1000,
                )
            return self._producer

    def _send_all(
        self, events: Sequence[EnrichedEvent], rejected: Sequence[Rejection]
    ) -> list[Any]:
        producer = self._connected_producer()
        sent = [
            producer.send(self._topic, key=e.partition_key.encode(), value=e.to_kafka())
            for e in events
        ]
        sent += [
            producer.send(
                self._invalid_topic, key=r.kafka_key(), value=r.raw, headers=r.kafka_headers()
            )
            for r in rejected
        ]
        return sent

    async def publish(
        self, events: Sequence[EnrichedEvent], rejected: Sequence[Rejection] = ()
    ) -> None:
        # Sending and waiting for the acks both happen on a worker thread: one hop to the event
        # loop per request. A callback into the loop per event (call_soon_threadsafe wakes it
        # through its self-pipe) cost more CPU than producing the event.
        await asyncio.to_thread(self.publish_blocking, events, rejected)

    def publish_blocking(
        self, events: Sequence[EnrichedEvent], rejected: Sequence[Rejection] = ()
    ) -> None:
        """`publish` for callers without an event loop (the SDK's Kafka transport)."""
        deadline = time.monotonic() + self._timeout
        producer = None
        try:
            producer = self._connected_producer()
            for future in self._send_all(events, rejected):
                future.get(timeout=max(0.001, deadline - time.monotonic()))
        except (KafkaError, TimeoutError, OSError) as exc:
            if producer is not None:
                self._replace(producer)
            raise SinkUnavailable(f"Kafka did not acknowledge the events: {exc!r}") from exc

    def _replace(self, failed: KafkaProducer) -> None:
        """A producer that did not deliver may never deliver again: after a broker crash with
        requests in flight, kafka-python's producer can stay wedged on the dead connection. The
        next request gets a new one; the old one is abandoned without waiting (what it still
        holds may arrive later: a copy, which the worker's dedup drops)."""
        close = failed.close
        with self._lock:
            if self._producer is not failed:
                return  # another request replaced it already
            self._producer = None
        threading.Thread(target=close, kwargs={"timeout": 0}, daemon=True).start()

    def ready(self) -> bool:
        """Kafka can take an event now: a broker of the bootstrap list accepts a connection.
        (The producer's cached metadata kept saying yes for 30 s after the broker went away.)"""
        for server in self._bootstrap.split(","):
            address = urlsplit(f"//{server.strip()}")
            try:
                with socket.create_connection((address.hostname, address.port or 9092), 1.0):
                    return True
            except OSError:
                continue
        return False

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=self._timeout)
                self._producer = None


class InMemoryEventSink:
    """For unit tests: keeps what it was given; `down = True` makes it refuse like a dead broker."""

    def __init__(self) -> None:
        self.events: list[EnrichedEvent] = []
        self.invalid: list[Rejection] = []
        self.down = False

    async def publish(
        self, events: Sequence[EnrichedEvent], rejected: Sequence[Rejection] = ()
    ) -> None:
        if self.down:
            raise SinkUnavailable("in-memory sink is down")
        for event in events:  # encoded as the Kafka sink would, so tests meet the same failures
            event.partition_key.encode()
            event.to_kafka()
        self.events.extend(events)
        self.invalid.extend(rejected)

    def ready(self) -> bool:
        return not self.down

    def close(self) -> None:
        pass
