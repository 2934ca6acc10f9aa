-- schemas/migrations/0003_activations.sql on a replicated, sharded cluster: shard-local
-- `*_local` tables and the Distributed `activations` and `activation_starts` the code uses.
CREATE TABLE IF NOT EXISTS activations_local ON CLUSTER '{cluster}'
(
    id                    String,
    type                  LowCardinality(String),
    tenant                LowCardinality(String),
    rule                  LowCardinality(String),
    subject               LowCardinality(String),
    account               String,
    user_id               String,
    started_at            DateTime64(3, 'UTC'),
    deadline              DateTime64(3, 'UTC'),
    activated_at          Nullable(DateTime64(3, 'UTC')),
    time_to_value_ms      Nullable(UInt64),
    qualifying_message_id String,
    kafka_partition       UInt32,
    kafka_offset          UInt64,
    written_at            DateTime64(3, 'UTC') DEFAULT now64(3)
)
-- Replicated per shard; no read-time dedup, as on a single server (the writer checks ids).
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/activations_local', '{replica}')
-- One row per subject and rule, ever; read whole by tenant, rule or account.
ORDER BY (tenant, rule, account, user_id);

-- Sharded like Kafka is partitioned (tenant, account): a subject's outcome lives on the shard of
-- its events. The writer's id check reads all shards, so correctness does not depend on it.
CREATE TABLE IF NOT EXISTS activations ON CLUSTER '{cluster}' AS activations_local
ENGINE = Distributed('{cluster}', currentDatabase(), activations_local, cityHash64(tenant, account));

CREATE TABLE IF NOT EXISTS activation_starts_local ON CLUSTER '{cluster}'
(
    tenant          LowCardinality(String),
    rule            LowCardinality(String),
    account         String,
    user_id         String,
    started_at      DateTime64(3, 'UTC'),
    kafka_partition UInt32,
    kafka_offset    UInt64,
    written_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/activation_starts_local', '{replica}')
-- Readers take min(started_at) per subject, exact whatever the repeats or the shard.
ORDER BY (tenant, rule, account, user_id);

CREATE TABLE IF NOT EXISTS activation_starts ON CLUSTER '{cluster}' AS activation_starts_local
ENGINE = Distributed('{cluster}', currentDatabase(), activation_starts_local, cityHash64(tenant, account));

INSERT INTO schema_migrations (version, name) VALUES (3, 'activations');
