"""A consumer group's progress read from the broker: committed offsets against log ends."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError


@dataclass(frozen=True)
class OffsetSample:
    at: float  # time.monotonic() of the reading
    end: int  # messages in the topic (sum of log-end offsets)
    committed: int  # messages the group has committed (sum of committed offsets)

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


class GroupOffsets:
    """The broker's view of how far a group has got, the same for the worker and the copier.

    Reading the broker rather than asking the consumer measures every consumer alike and counts
    only what is committed, which both commit only once ClickHouse holds it."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        self._topic = topic
        described = self._admin.describe_topics([topic])
        self._last: dict[str, int] = {}
        self._partitions = [
            TopicPartition(topic, p["partition_index"]) for p in described[0]["partitions"]
        ]

    def end(self) -> int:
        found = self._admin.list_partition_offsets(
            {tp: OffsetSpec.LATEST for tp in self._partitions}
        )
        return sum(int(o.offset) for o in found.values())

    def read(self, group: str) -> OffsetSample:
        """Where `group` stands; while its coordinator is not found yet (a new group, the
        offsets topic still being created) the last reading, or nothing committed."""
        end = self.end()
        try:
            offsets = self._admin.list_group_offsets({group: self._partitions}).get(group, {})
        except KafkaError:
            return OffsetSample(time.monotonic(), end, self._last.get(group, 0))
        committed = sum(max(0, int(meta.offset)) for meta in offsets.values())
        self._last[group] = committed
        return OffsetSample(time.monotonic(), end, committed)

    def start_at_end(self, group: str) -> None:
        """Commit the log end for `group` (which must have no members yet), so a consumer that
        joins it reads only what is produced from now on."""
        self._admin.reset_group_offsets(group, {tp: OffsetSpec.LATEST for tp in self._partitions})

    def close(self) -> None:
        self._admin.close()
