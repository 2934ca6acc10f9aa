-- Every event of this partition the collector received (its `receivedAt`) before this moment is
-- written by every processor (processors.worker_progress). Rows from before this column read the
-- epoch: nothing known. Merges keep the row with the furthest next_offset, which the worker
-- gives the furthest time it knows, so merging loses no time.
ALTER TABLE worker_progress
    ADD COLUMN IF NOT EXISTS received_through DateTime64(3, 'UTC') DEFAULT toDateTime64(0, 3, 'UTC');
