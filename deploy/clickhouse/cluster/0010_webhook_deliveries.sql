-- schemas/migrations/0010_webhook_deliveries.sql on a replicated, sharded cluster: the
-- shard-local `webhook_deliveries_local` and the Distributed `webhook_deliveries` the code uses.
CREATE TABLE IF NOT EXISTS webhook_deliveries_local ON CLUSTER '{cluster}'
(
    tenant           LowCardinality(String),
    endpoint         LowCardinality(String),
    url              String,
    record_id        String,
    kind             LowCardinality(String),
    account          String,
    attempt          UInt32,
    status           LowCardinality(String),
    status_code      UInt16,
    error            String,
    latency_seconds  Float64,
    created_at       DateTime64(3, 'UTC'),
    attempted_at     DateTime64(3, 'UTC'),
    next_attempt_at  Nullable(DateTime64(3, 'UTC')),
    topic            LowCardinality(String),
    kafka_partition  UInt32,
    kafka_offset     UInt64,
    payload          String CODEC(ZSTD(3)),
    written_at       DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX record_id_bloom record_id TYPE bloom_filter GRANULARITY 4
)
-- Replicated per shard; append-only, as on a single server (readers take the latest row).
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/webhook_deliveries_local', '{replica}')
-- By month of the delivery: old months can be dropped whole.
PARTITION BY toYYYYMM(created_at)
-- A tenant's deliveries together, each delivery's attempts side by side in order.
ORDER BY (tenant, record_id, endpoint, attempt);

-- Sharded by record: all attempts of a delivery on one shard. Readers group across shards.
CREATE TABLE IF NOT EXISTS webhook_deliveries ON CLUSTER '{cluster}' AS webhook_deliveries_local
ENGINE = Distributed('{cluster}', currentDatabase(), webhook_deliveries_local, cityHash64(tenant, record_id));

INSERT INTO schema_migrations (version, name) VALUES (10, 'webhook_deliveries');
