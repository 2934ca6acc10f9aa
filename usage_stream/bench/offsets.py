"""How far a consumer group has got, summed over the bench's topic (runtime.offsets reads it)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kafka import KafkaAdminClient
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError

from runtime.offsets import committed_offsets, end_offsets, partitions_of


@dataclass(frozen=True)
class OffsetSample:
    at: float  # time.monotonic() of the reading
    end: int  # messages in the topic (sum of log-end offsets)
    committed: int  # messages the group has committed (sum of committed offsets)

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


class GroupOffsets:
    """The broker's view of how far a group has got, the same for the worker and the copier:
    both commit only once ClickHouse holds what they read."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        self._last: dict[str, int] = {}
        self._partitions = partitions_of(self._admin, [topic])

    def end(self) -> int:
        return sum(end_offsets(self._admin, self._partitions).values())

    def read(self, group: str) -> OffsetSample:
        """Where `group` stands; while its coordinator is not found yet (a new group, the
        offsets topic still being created) the last reading, or nothing committed."""
        end = self.end()
        try:
            offsets = committed_offsets(self._admin, group, self._partitions)
        except KafkaError:
            return OffsetSample(time.monotonic(), end, self._last.get(group, 0))
        committed = sum(offsets.values())
        self._last[group] = committed
        return OffsetSample(time.monotonic(), end, committed)

    def start_at_end(self, group: str) -> None:
        """Commit the log end for `group` (which must have no members yet), so a consumer that
        joins it reads only what is produced from now on."""
        self._admin.reset_group_offsets(group, {tp: OffsetSpec.LATEST for tp in self._partitions})

    def close(self) -> None:
        self._admin.close()
