-- schemas/migrations/0009_usage_alerts.sql on a replicated, sharded cluster: shard-local
-- `*_local` tables and the Distributed `usage_alerts` and `account_plans` the code uses.
CREATE TABLE IF NOT EXISTS usage_alerts_local ON CLUSTER '{cluster}'
(
    id           String,
    kind         LowCardinality(String),
    tenant       LowCardinality(String),
    account      String,
    meter        LowCardinality(String),
    period       String,
    threshold    String,
    generation   UInt32,
    level        Nullable(Decimal(38, 9)),
    quantity     Decimal(38, 9),
    included     Nullable(Decimal(38, 9)),
    plan         String,
    with_others  Array(String),
    tier_left    String,
    tier_entered String,
    late         Bool,
    at           DateTime64(3, 'UTC')
)
-- Replicated per shard; replacing by id, as on a single server.
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/usage_alerts_local', '{replica}')
PARTITION BY substring(period, 1, 4)
ORDER BY (tenant, account, meter, period, threshold, generation, kind, id);

-- Sharded like Kafka is partitioned (tenant, account): an account's alerts live with its events.
CREATE TABLE IF NOT EXISTS usage_alerts ON CLUSTER '{cluster}' AS usage_alerts_local
ENGINE = Distributed('{cluster}', currentDatabase(), usage_alerts_local, cityHash64(tenant, account));

CREATE TABLE IF NOT EXISTS account_plans_local ON CLUSTER '{cluster}'
(
    tenant       LowCardinality(String),
    account      String,
    effective_at DateTime64(3, 'UTC'),
    plan         String,
    message_id   String
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/account_plans_local', '{replica}')
ORDER BY (tenant, account, effective_at, message_id);

CREATE TABLE IF NOT EXISTS account_plans ON CLUSTER '{cluster}' AS account_plans_local
ENGINE = Distributed('{cluster}', currentDatabase(), account_plans_local, cityHash64(tenant, account));

INSERT INTO schema_migrations (version, name) VALUES (9, 'usage_alerts');
