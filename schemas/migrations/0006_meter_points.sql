-- Time-weighted and seats meters need every report, not a per-minute summary: a value holds
-- until the next report, which may come in another minute, another batch, or late. Each row
-- keeps its minute's reports (at, messageId, value; for seats the change ±n), so the quantity
-- over any range is cut at read time, exactly, whatever order the reports arrived in.
ALTER TABLE meter_minutes
    ADD COLUMN IF NOT EXISTS points Array(Tuple(DateTime64(3, 'UTC'), String, Decimal(38, 9)))
    AFTER latest_id;
