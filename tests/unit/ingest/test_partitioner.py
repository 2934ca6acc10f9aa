"""The collector's partitioner answers exactly what Kafka's default one answers for every key."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st
from kafka.partitioner.default import DefaultPartitioner

from ingest.partitioner import KeyHashPartitioner


@dataclass
class Cluster:
    partitions: set[int]

    def topics(self) -> set[str]:
        return {"events"}

    def partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions

    def available_partitions_for_topic(self, topic: str) -> set[int]:
        return self.partitions


@given(
    keys=st.lists(st.binary(max_size=40), min_size=1, max_size=20),
    partitions=st.sets(st.integers(0, 50), min_size=1, max_size=12)
    | st.integers(1, 64).map(lambda n: set(range(n))),
)
def test_each_key_goes_where_the_default_partitioner_sends_it(
    keys: list[bytes], partitions: set[int]
) -> None:
    cluster, ours, default = Cluster(partitions), KeyHashPartitioner(), DefaultPartitioner()
    for key in keys + keys:  # the second time from memory
        assert ours.partition("events", key, key, None, None, cluster) == default.partition(
            "events", key, key, None, None, cluster
        )
