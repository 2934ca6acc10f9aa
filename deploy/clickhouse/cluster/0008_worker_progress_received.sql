-- schemas/migrations/0008_worker_progress_received.sql on a replicated, sharded cluster: the
-- column goes to the shard-local table and to the Distributed table the code reads and writes.
ALTER TABLE worker_progress_local ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS received_through DateTime64(3, 'UTC') DEFAULT toDateTime64(0, 3, 'UTC');

ALTER TABLE worker_progress ON CLUSTER '{cluster}'
    ADD COLUMN IF NOT EXISTS received_through DateTime64(3, 'UTC') DEFAULT toDateTime64(0, 3, 'UTC');

INSERT INTO schema_migrations (version, name) VALUES (8, 'worker_progress_received');
