"""A consumer group's offsets read from the broker: log ends, earliest offsets and commits.

Reading the broker rather than asking a consumer measures every consumer alike, keeps growing
while one is stuck, and counts only what is committed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec

Offsets = dict[tuple[str, int], int]  # (topic, partition) → offset


def partitions_of(admin: KafkaAdminClient, topics: Sequence[str]) -> list[TopicPartition]:
    """Every partition of `topics`."""
    return [
        TopicPartition(topic["name"], p["partition_index"])
        for topic in admin.describe_topics(list(topics))
        for p in topic["partitions"]
    ]


def end_offsets(admin: KafkaAdminClient, partitions: Sequence[TopicPartition]) -> Offsets:
    """Each partition's log end: the offset its next record will take."""
    return _offsets(admin.list_partition_offsets({tp: OffsetSpec.LATEST for tp in partitions}))


def earliest_offsets(admin: KafkaAdminClient, partitions: Sequence[TopicPartition]) -> Offsets:
    """Each partition's earliest offset still held."""
    return _offsets(admin.list_partition_offsets({tp: OffsetSpec.EARLIEST for tp in partitions}))


def committed_offsets(
    admin: KafkaAdminClient, group: str, partitions: Sequence[TopicPartition]
) -> Offsets:
    """The offsets `group` has committed, for the partitions it has committed at all."""
    found = admin.list_group_offsets({group: list(partitions)}).get(group, {})
    return {
        (tp.topic, tp.partition): int(meta.offset)
        for tp, meta in found.items()
        if meta.offset >= 0  # -1: this partition has no commit yet
    }


def _offsets(found: Mapping[Any, Any]) -> Offsets:
    return {(tp.topic, tp.partition): int(o.offset) for tp, o in found.items()}
