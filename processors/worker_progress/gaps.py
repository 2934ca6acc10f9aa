"""A batch's gaps: the offsets it lacks after where the worker's progress left each partition,
read straight from Kafka, outside any group."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

from kafka import KafkaConsumer, TopicPartition

from processors.model import RawMessage

log = logging.getLogger(__name__)


def read_range(
    bootstrap: str, topic: str, partition: int, start: int, end: int, timeout: float = 60.0
) -> list[RawMessage]:
    """The messages at offsets [start, end), in order. Offsets the log no longer holds
    (retention) or never held (transaction markers) are simply absent. Raises TimeoutError when
    the range cannot be read within `timeout` seconds, so the caller retries."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap.split(","),
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",  # the start may be gone already: begin with what is left
    )
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, start)
        out: list[RawMessage] = []
        deadline = time.monotonic() + timeout
        while consumer.position(tp) < end:
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic}[{partition}] {start}..{end - 1}")
            for record in consumer.poll(timeout_ms=500).get(tp, []):
                if start <= record.offset < end:
                    out.append(RawMessage(partition, record.offset, record.key, record.value))
        return out
    finally:
        consumer.close()


def missing_ranges(
    offsets: Iterable[tuple[int, int]], next_unread: Mapping[int, int]
) -> list[tuple[int, int, int]]:
    """(partition, start, end): the offsets [start, end) a batch lacks, between where each of
    its partitions was left (`next_unread`; a partition absent there has no past to miss) and
    the batch's own offsets, and between those."""
    by_partition: dict[int, list[int]] = {}
    for partition, offset in offsets:
        by_partition.setdefault(partition, []).append(offset)
    ranges = []
    for partition, seen in sorted(by_partition.items()):
        expected = next_unread.get(partition)
        if expected is None:
            continue
        for offset in sorted(seen):
            if offset > expected:
                ranges.append((partition, expected, offset))
            expected = max(expected, offset + 1)
    return ranges


def with_missing(
    bootstrap: str, topic: str, messages: list[RawMessage], next_unread: Mapping[int, int]
) -> list[RawMessage]:
    """`messages` and what they lack (see `missing_ranges`) read from Kafka, in (partition,
    offset) order; `messages` as they are when nothing is missing."""
    ranges = missing_ranges(((m.partition, m.offset) for m in messages), next_unread)
    found: list[RawMessage] = []
    for partition, start, end in ranges:
        log.warning(
            "offsets %d..%d of %s[%d] were acknowledged by faust but not handed over;"
            " reading them from Kafka",
            start,
            end - 1,
            topic,
            partition,
        )
        found += read_range(bootstrap, topic, partition, start, end)
    if not ranges:
        return messages
    return sorted([*found, *messages], key=lambda m: (m.partition, m.offset))
