"""Where accepted events go: the EventSink boundary, its Kafka and in-memory implementations."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any, Protocol

from kafka import KafkaProducer
from kafka.errors import KafkaError

from schemas import EnrichedEvent


class SinkUnavailable(Exception):
    """The sink did not acknowledge every event; the sender must retry (HTTP 503)."""


class EventSink(Protocol):
    async def publish(self, events: Sequence[EnrichedEvent]) -> None:
        """Return only once every event is durably held; raise SinkUnavailable otherwise."""
        ...

    def ready(self) -> bool: ...

    def close(self) -> None: ...


class KafkaEventSink:
    """Produces with acks=all and idempotence, keyed tenant:account, and waits for every ack."""

    def __init__(self, bootstrap: str, topic: str, timeout_seconds: float) -> None:
        self._bootstrap = bootstrap
        self._topic = topic
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
                    linger_ms=2,
                    bootstrap_timeout_ms=timeout_ms,
                    max_block_ms=timeout_ms,
                    request_timeout_ms=timeout_ms,
                    delivery_timeout_ms=timeout_ms + 1000,
                )
            return self._producer

    def _send_all(self, events: Sequence[EnrichedEvent]) -> list[Any]:
        producer = self._connected_producer()
        return [
            producer.send(self._topic, key=e.partition_key.encode(), value=e.to_kafka())
            for e in events
        ]

    async def publish(self, events: Sequence[EnrichedEvent]) -> None:
        loop = asyncio.get_running_loop()
        try:
            sent = await asyncio.to_thread(self._send_all, events)
            acks = [_bridge(loop, future) for future in sent]
            await asyncio.wait_for(asyncio.gather(*acks), self._timeout)
        except (KafkaError, TimeoutError, OSError) as exc:
            raise SinkUnavailable(f"Kafka did not acknowledge the events: {exc!r}") from exc

    def ready(self) -> bool:
        try:
            producer = self._connected_producer()
        except KafkaError:
            return False
        return bool(producer.bootstrap_connected()) or bool(producer.partitions_for(self._topic))

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.close(timeout=self._timeout)
                self._producer = None


def _bridge(loop: asyncio.AbstractEventLoop, record_future: Any) -> asyncio.Future[Any]:
    """kafka-python's future resolves on its I/O thread; hand the result to the event loop."""
    future: asyncio.Future[Any] = loop.create_future()

    def done(value: Any) -> None:
        if not future.done():
            future.set_result(value)

    def failed(exc: BaseException) -> None:
        if not future.done():
            future.set_exception(exc)

    record_future.add_callback(lambda v: loop.call_soon_threadsafe(done, v))
    record_future.add_errback(lambda e: loop.call_soon_threadsafe(failed, e))
    return future


class InMemoryEventSink:
    """For unit tests: keeps what it was given; `down = True` makes it refuse like a dead broker."""

    def __init__(self) -> None:
        self.events: list[EnrichedEvent] = []
        self.down = False

    async def publish(self, events: Sequence[EnrichedEvent]) -> None:
        if self.down:
            raise SinkUnavailable("in-memory sink is down")
        self.events.extend(events)

    def ready(self) -> bool:
        return not self.down

    def close(self) -> None:
        pass
