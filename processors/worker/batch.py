"""One batch of Kafka messages through every processor: decode, dedup, write; retried whole."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from processors.model import Delivery, RawMessage, Rejected, decode
from processors.storage.events import EventStore

log = logging.getLogger(__name__)
RAW_STORE = "raw"  # how the raw event store is named beside the processors, e.g. in metrics


class Processor(Protocol):
    """A consumer of stored events. `write` must be idempotent per Kafka place (partition,
    offset): after a crash the same originals are handed over again and must count once."""

    name: str

    def write(self, originals: Sequence[Delivery]) -> None: ...


@dataclass
class BatchResult:
    stored: int
    duplicates: int
    rejected: list[Rejected]
    # For the metrics: when each stored original was received, how long each writer took.
    received_at: list[datetime] = field(default_factory=list)
    processor_seconds: dict[str, float] = field(default_factory=dict)
    # Every message of the batch that is an event, decoded once for every step that follows.
    deliveries: list[Delivery] = field(default_factory=list)


def run_batch(
    messages: Sequence[RawMessage], store: EventStore, processors: Sequence[Processor]
) -> BatchResult:
    """Store the raw events, then hand the originals to each processor. Raises on a storage
    failure, so the caller retries the whole batch; every step is idempotent, so a retry (or a
    redelivery after a crash) changes nothing that was already written."""
    deliveries, rejected = decode(messages)
    started = time.perf_counter()
    kept = store.store(deliveries)
    seconds = {RAW_STORE: time.perf_counter() - started}
    for processor in processors:
        started = time.perf_counter()
        processor.write(kept)
        seconds[processor.name] = time.perf_counter() - started
    return BatchResult(
        stored=len(kept),
        duplicates=len(deliveries) - len(kept),
        rejected=rejected,
        received_at=[d.event.received_at for d in kept],
        processor_seconds=seconds,
        deliveries=deliveries,
    )
