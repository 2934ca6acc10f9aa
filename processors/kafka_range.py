"""Reading a range of offsets of one topic partition straight from Kafka, outside any group."""

from __future__ import annotations

import time

from kafka import KafkaConsumer, TopicPartition

from processors.batch import RawMessage


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
