-- schemas/migrations/0002_meter_minutes.sql on a replicated, sharded cluster: the shard-local
-- `meter_minutes_local` and the Distributed `meter_minutes` the code reads and writes.
CREATE TABLE IF NOT EXISTS meter_minutes_local ON CLUSTER '{cluster}'
(
    tenant          LowCardinality(String),
    meter           LowCardinality(String),
    customer        String,
    groups          Map(LowCardinality(String), String),
    minute          DateTime('UTC'),
    adjustment      UInt8,
    events          UInt64,
    skipped         UInt64,
    value_sum       Decimal(38, 9),
    value_min       Nullable(Decimal(38, 9)),
    value_max       Nullable(Decimal(38, 9)),
    uniq_values     Array(String),
    latest_value    Nullable(Decimal(38, 9)),
    latest_at       DateTime64(3, 'UTC'),
    latest_id       String,
    kafka_partition UInt32,
    kafka_next_offset UInt64,
    written_at      DateTime64(3, 'UTC') DEFAULT now64(3),
    PROJECTION marks (SELECT kafka_partition, max(kafka_next_offset) GROUP BY kafka_partition)
)
-- Replicated per shard: a replica lost is a replica re-fetched, not quantities lost.
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/meter_minutes_local', '{replica}')
-- No PARTITION BY: one insert per shard must stay one part, atomic with its Kafka marks.
-- Reads are one tenant's meter over a time range, per customer.
ORDER BY (tenant, meter, minute, customer);

-- Sharded by Kafka partition, and by nothing finer: every row of one batch's partition carries
-- that partition's mark, so they must land in one insert on one shard, all or nothing. Were a
-- partition's rows split across shards, one shard's success would advance the mark while
-- another shard's rows were lost, and the retry would skip them.
CREATE TABLE IF NOT EXISTS meter_minutes ON CLUSTER '{cluster}' AS meter_minutes_local
ENGINE = Distributed('{cluster}', currentDatabase(), meter_minutes_local, kafka_partition);

INSERT INTO schema_migrations (version, name) VALUES (2, 'meter_minutes');
