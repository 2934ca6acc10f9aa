"""Records the worker's consumer could not hand over are read again, against the real broker.

Around a rebalance a fetch can come back after the flow stopped: faust had just sought a table's
changelog to where its restore begins, and dropping those records left the restore waiting for
offsets the consumer had already passed. `rewind` moves such a partition back to the first of
them, unless it was sought elsewhere since.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from kafka import KafkaProducer

from processors.worker.bulk import rewind
from runtime.topics import ensure_topics
from usage_stream.broker import LocalBroker

pytestmark = pytest.mark.integration


def topic_of_ten(kafka: LocalBroker) -> str:
    topic = f"put-back-{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka.bootstrap, [topic], 1)
    producer = KafkaProducer(bootstrap_servers=kafka.bootstrap)
    for i in range(10):
        producer.send(topic, value=str(i).encode(), partition=0)
    producer.flush()
    producer.close()
    return topic


@asynccontextmanager
async def reading(kafka: LocalBroker, topic: str) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer holding the topic's partition 0, outside any group."""
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, 0)])
        yield consumer
    finally:
        await consumer.stop()


async def offsets_read(consumer: AIOKafkaConsumer, tp: TopicPartition, count: int) -> list[int]:
    seen: list[int] = []
    while len(seen) < count:
        fetched = await consumer.getmany(tp, timeout_ms=5000, max_records=count - len(seen))
        assert fetched, f"nothing more after {seen}"
        seen += [record.offset for record in fetched[tp]]
    return seen


def test_a_partition_goes_back_to_the_records_not_handed_over(kafka: LocalBroker) -> None:
    topic = topic_of_ten(kafka)

    async def scenario() -> tuple[list[int], list[int]]:
        tp = TopicPartition(topic, 0)
        async with reading(kafka, topic) as consumer:
            consumer.seek(tp, 0)
            first = await offsets_read(consumer, tp, 6)  # fetched, then not handed over
            await rewind(consumer, {tp: (first[0], first[-1] + 1)})
            return first, await offsets_read(consumer, tp, 10)

    first, again = asyncio.run(scenario())
    assert first == list(range(6))
    assert again == list(range(10))


def test_a_partition_sought_elsewhere_since_keeps_that_position(kafka: LocalBroker) -> None:
    topic = topic_of_ten(kafka)

    async def scenario() -> list[int]:
        tp = TopicPartition(topic, 0)
        async with reading(kafka, topic) as consumer:
            consumer.seek(tp, 4)
            fetched = await offsets_read(consumer, tp, 3)  # 4, 5, 6
            consumer.seek(tp, 1)  # a restore begins at 1 meanwhile
            await rewind(consumer, {tp: (fetched[0], fetched[-1] + 1)})
            return await offsets_read(consumer, tp, 9)

    assert asyncio.run(scenario()) == list(range(1, 10))
