-- schemas/migrations/0006_meter_points.sql on a replicated, sharded cluster: the column goes to
-- the shard-local table and to the Distributed table the code reads and writes.
ALTER TABLE meter_minutes_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS points Array(Tuple(DateTime64(3, 'UTC'), String, Decimal(38, 9)))
    AFTER latest_id;

ALTER TABLE meter_minutes ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS points Array(Tuple(DateTime64(3, 'UTC'), String, Decimal(38, 9)))
    AFTER latest_id;

INSERT INTO schema_migrations (version, name) VALUES (6, 'meter_points');
