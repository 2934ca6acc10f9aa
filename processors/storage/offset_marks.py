"""How far a derived table has counted each Kafka partition, read back from the table itself.

A processor writes its rows and the next offset of each partition (its mark, see
`processors.model.offset_marks`) in the same insert; after a crash, the rows of the batch that
was being written are either all there (with their mark) or none are, so `uncounted` hands
exactly the uncounted events to the retry.
"""

from __future__ import annotations

from collections.abc import Sequence

from processors.model import Delivery
from processors.storage.clickhouse import ClickHouse


def read_marks(clickhouse: ClickHouse, table: str, batch: Sequence[Delivery]) -> dict[int, int]:
    """Per partition of the batch: the first offset `table` has not counted yet."""
    partitions = sorted({d.partition for d in batch})
    rows = clickhouse.query(
        f"SELECT kafka_partition, max(kafka_next_offset) FROM {table}"
        " WHERE kafka_partition IN {partitions:Array(UInt32)} GROUP BY kafka_partition",
        {"partitions": partitions},
    )
    return {int(partition): int(offset) for partition, offset in rows}


def uncounted(batch: Sequence[Delivery], marks: dict[int, int]) -> list[Delivery]:
    """The deliveries at or past their partition's mark: not yet counted."""
    return [d for d in batch if d.offset >= marks.get(d.partition, 0)]
