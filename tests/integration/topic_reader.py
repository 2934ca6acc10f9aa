"""Reading a test's Kafka topic from the beginning to its current end, for what landed there."""

from __future__ import annotations

import json
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from tests.harness import wait_until


def read_topic(bootstrap: str, topic: str) -> list[Any]:
    """Every record now in `topic` (ConsumerRecord objects), up to the end offsets of the moment."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        found = wait_until(lambda: consumer.partitions_for_topic(topic), 30)
        partitions = [TopicPartition(topic, p) for p in sorted(found)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        end = consumer.end_offsets(partitions)
        records: list[Any] = []

        def caught_up() -> bool:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
            return all(consumer.position(tp) >= end[tp] for tp in partitions)

        wait_until(caught_up, 60, interval=0)
        return records
    finally:
        consumer.close()


def message_ids(bootstrap: str, topic: str) -> list[str]:
    """The messageId of every event on an events topic, repeats included."""
    return [json.loads(r.value)["messageId"] for r in read_topic(bootstrap, topic)]
