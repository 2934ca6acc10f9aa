-- The migration ledger, one copy replicated to every node (no {shard} in its path), so
-- `usage-stream migrate` and starting workers see what this directory already applied.
CREATE TABLE IF NOT EXISTS schema_migrations ON CLUSTER '{cluster}'
(
    version    UInt32,
    name       String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/{database}/schema_migrations', '{replica}')
-- A handful of rows, read whole at start-up: any order will do.
ORDER BY version;
