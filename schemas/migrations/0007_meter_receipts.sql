-- A held meter's report counts in the invoice of every period that was still open when it was
-- received: a seat added on Oct 5 but reported in November (October final by then) is part of
-- November's seats. So each report keeps its receipt time, in the same order as `points`.
-- Rows written before this column read an empty array: their late reports take `written_at`.
ALTER TABLE meter_minutes
    ADD COLUMN IF NOT EXISTS points_received Array(DateTime64(3, 'UTC'))
    AFTER points;
-- Events whose time was more than the collector's limit in the future, stored at receipt
-- (context.usageStream.clampedTimestamp): counted per row so a usage answer can say so.
ALTER TABLE meter_minutes
    ADD COLUMN IF NOT EXISTS clamped UInt64 DEFAULT 0
    AFTER skipped;
