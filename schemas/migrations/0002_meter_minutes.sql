-- Per-minute partial quantities of every meter, one row per (batch, partition, key, minute).
-- Quantities for any range are aggregated from these at read time: count and sum add up, min
-- and max combine, distinct values are kept as values (not counts) so unique_count over a whole
-- range is exact, and latest keeps its value with the time it was observed.
CREATE TABLE IF NOT EXISTS meter_minutes
(
    tenant          LowCardinality(String),
    meter           LowCardinality(String),
    customer        String,
    groups          Map(LowCardinality(String), String),
    minute          DateTime('UTC'),
    -- 1 for events received after their billing period became final: reported, not invoiced.
    adjustment      UInt8,
    events          UInt64,
    -- matching events whose value was missing or not a number: visible, never silently lost
    skipped         UInt64,
    value_sum       Decimal(38, 9),
    value_min       Nullable(Decimal(38, 9)),
    value_max       Nullable(Decimal(38, 9)),
    uniq_values     Array(String),
    latest_value    Nullable(Decimal(38, 9)),
    latest_at       DateTime64(3, 'UTC'),
    latest_id       String,
    -- The write's place in Kafka: the next offset of its partition after this batch (0 for
    -- backfills). One insert is one part, so rows and their mark land together or not at all,
    -- and max(kafka_next_offset) tells a restarted worker exactly what is already counted.
    kafka_partition UInt32,
    kafka_next_offset UInt64,
    written_at      DateTime64(3, 'UTC') DEFAULT now64(3),
    PROJECTION marks (SELECT kafka_partition, max(kafka_next_offset) GROUP BY kafka_partition)
)
ENGINE = MergeTree
-- No PARTITION BY: an insert must stay one part to be atomic with its Kafka mark; the table
-- holds per-minute aggregates, small enough to need no partition pruning.
-- Reads are one tenant's meter over a time range, per customer.
ORDER BY (tenant, meter, minute, customer)
