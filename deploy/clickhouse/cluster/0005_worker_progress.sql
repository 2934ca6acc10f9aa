-- schemas/migrations/0005_worker_progress.sql on a replicated, sharded cluster: the shard-local
-- `worker_progress_local` and the Distributed `worker_progress` the code reads and writes.
CREATE TABLE IF NOT EXISTS worker_progress_local ON CLUSTER '{cluster}'
(
    topic            LowCardinality(String),
    kafka_partition  UInt32,
    next_offset      UInt64,
    written_at       DateTime64(3, 'UTC') DEFAULT now64(3)
)
-- Replicated per shard; merges keep the furthest point of each partition.
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/worker_progress_local', '{replica}', next_offset)
ORDER BY (topic, kafka_partition);

-- Sharded by Kafka partition, like the tables whose writes it follows.
CREATE TABLE IF NOT EXISTS worker_progress ON CLUSTER '{cluster}' AS worker_progress_local
ENGINE = Distributed('{cluster}', currentDatabase(), worker_progress_local, kafka_partition);

INSERT INTO schema_migrations (version, name) VALUES (5, 'worker_progress');
