"""The worker's progress, kept in the `worker_progress` table beside the data: per partition of
the events topic, the first offset not written yet and the receipt time written through.

faust can acknowledge, and so commit, a message an agent never saw: around a rebalance it skips
and acks the messages of the old generation still in its queues. The worker does not rely on
being handed every message: a batch that begins past its partition's first offset not written
(or skips offsets) is completed from Kafka before it is written (`gaps`). The receipt times say
how complete the numbers are (`receipts`; `store.complete_through`).
"""
