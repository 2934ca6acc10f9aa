-- How far the worker has written each partition of the events topic: a row per batch and
-- partition, inserted once the batch's events, meters and counters are written. A batch that
-- begins past this point (or skips offsets) lacks messages that faust acknowledged without
-- handing them over; the worker reads those from Kafka before writing the batch.
CREATE TABLE IF NOT EXISTS worker_progress
(
    topic            LowCardinality(String),
    kafka_partition  UInt32,
    -- The first offset of the partition not written yet.
    next_offset      UInt64,
    written_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
-- Only the furthest point of each partition matters: merges keep that row and drop the rest
-- (reads take max(next_offset) all the same, so rows not merged yet change nothing).
ENGINE = ReplacingMergeTree(next_offset)
-- One row per (topic, partition) once merged; reads ask for the partitions of one batch.
ORDER BY (topic, kafka_partition);
