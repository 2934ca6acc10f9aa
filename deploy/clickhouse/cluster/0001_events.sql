-- schemas/migrations/0001_events.sql on a replicated, sharded cluster: `events_local` holds
-- each shard's rows on every replica of the shard, `events` is the table the code reads and
-- writes, a Distributed table over all shards. Same columns, keys and projection.
CREATE TABLE IF NOT EXISTS events_local ON CLUSTER '{cluster}'
(
    tenant             LowCardinality(String),
    type               LowCardinality(String),
    message_id         String,
    event              LowCardinality(String),
    account            String,
    user_id            String,
    anonymous_id       String,
    timestamp          DateTime64(3, 'UTC'),
    original_timestamp Nullable(DateTime64(3, 'UTC')),
    sent_at            Nullable(DateTime64(3, 'UTC')),
    received_at        DateTime64(3, 'UTC'),
    kafka_partition    UInt32,
    kafka_offset       UInt64,
    stored_at          DateTime64(3, 'UTC') DEFAULT now64(3),
    properties         String CODEC(ZSTD(3)),
    traits             String CODEC(ZSTD(3)),
    context            String CODEC(ZSTD(3)),
    -- The dedup check's index, kept in the same parts as the rows (see the single-node DDL).
    PROJECTION by_message_id
    (
        SELECT tenant, message_id, timestamp, kafka_partition, kafka_offset
        ORDER BY tenant, message_id
    )
)
-- Replicated per shard: a replica lost is a replica re-fetched, not events lost.
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/events_local', '{replica}')
-- Month partitions: billing periods are months and old months move or drop whole.
PARTITION BY toYYYYMM(timestamp)
-- Meters and counters read one tenant's events of a few names over a time range.
ORDER BY (tenant, event, timestamp)
SETTINGS deduplicate_merge_projection_mode = 'rebuild';

-- Sharded like Kafka is partitioned (tenant, account): one account's events live on one shard,
-- and every copy of a messageId (same key) lands on the shard that holds the original. The
-- dedup check reads all shards through this table, so correctness does not depend on it.
CREATE TABLE IF NOT EXISTS events ON CLUSTER '{cluster}' AS events_local
ENGINE = Distributed('{cluster}', currentDatabase(), events_local, cityHash64(tenant, account));

INSERT INTO schema_migrations (version, name) VALUES (1, 'events');
