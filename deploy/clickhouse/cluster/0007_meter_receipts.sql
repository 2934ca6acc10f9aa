-- schemas/migrations/0007_meter_receipts.sql on a replicated, sharded cluster: the columns go to
-- the shard-local table and to the Distributed table the code reads and writes.
ALTER TABLE meter_minutes_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS points_received Array(DateTime64(3, 'UTC'))
    AFTER points;

ALTER TABLE meter_minutes ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS points_received Array(DateTime64(3, 'UTC'))
    AFTER points;

ALTER TABLE meter_minutes_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS clamped UInt64 DEFAULT 0
    AFTER skipped;

ALTER TABLE meter_minutes ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS clamped UInt64 DEFAULT 0
    AFTER skipped;

INSERT INTO schema_migrations (version, name) VALUES (7, 'meter_receipts');
