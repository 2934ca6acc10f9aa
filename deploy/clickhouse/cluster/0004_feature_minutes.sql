-- schemas/migrations/0004_feature_minutes.sql on a replicated, sharded cluster: the shard-local
-- `feature_minutes_local` and the Distributed `feature_minutes` the code reads and writes.
CREATE TABLE IF NOT EXISTS feature_minutes_local ON CLUSTER '{cluster}'
(
    tenant            LowCardinality(String),
    account           String,
    feature           LowCardinality(String),
    minute            DateTime('UTC'),
    events            UInt64,
    users             Array(String),
    kafka_partition   UInt32,
    kafka_next_offset UInt64,
    written_at        DateTime64(3, 'UTC') DEFAULT now64(3),
    PROJECTION marks (SELECT kafka_partition, max(kafka_next_offset) GROUP BY kafka_partition),
    PROJECTION by_feature (SELECT * ORDER BY tenant, feature, minute)
)
-- Replicated per shard: a replica lost is a replica re-fetched, not counts lost.
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/feature_minutes_local', '{replica}')
-- No PARTITION BY: one insert per shard must stay one part, atomic with its Kafka marks.
-- Counters and breadth read one account's features over a time range.
ORDER BY (tenant, account, feature, minute);

-- Sharded by Kafka partition and nothing finer, for the reason given in 0002_meter_minutes.sql:
-- a batch's rows of one partition carry its mark and must land all or nothing on one shard.
CREATE TABLE IF NOT EXISTS feature_minutes ON CLUSTER '{cluster}' AS feature_minutes_local
ENGINE = Distributed('{cluster}', currentDatabase(), feature_minutes_local, kafka_partition);

INSERT INTO schema_migrations (version, name) VALUES (4, 'feature_minutes');
