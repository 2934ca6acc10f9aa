-- Feature usage per (tenant, account, feature, minute): how many events, by which users, one row
-- per (batch, partition, key, minute). Hours, days and any range are cut from these rows at query
-- time: counts add up, and users are kept as values (not counts) so distinct users over a whole
-- range are exact. Rollup tables or materialized views would hold numbers that cannot be
-- combined exactly (distinct users) and would have to exist before the events they count.
CREATE TABLE IF NOT EXISTS feature_minutes
(
    tenant            LowCardinality(String),
    account           String,
    feature           LowCardinality(String),
    minute            DateTime('UTC'),
    events            UInt64,
    users             Array(String),
    -- The write's place in Kafka, as in meter_minutes: rows and mark land in one insert (one
    -- part) or not at all, so max(kafka_next_offset) says exactly what is already counted.
    kafka_partition   UInt32,
    kafka_next_offset UInt64,
    written_at        DateTime64(3, 'UTC') DEFAULT now64(3),
    PROJECTION marks (SELECT kafka_partition, max(kafka_next_offset) GROUP BY kafka_partition),
    -- Adoption reads one feature across every account of a tenant over a range.
    PROJECTION by_feature (SELECT * ORDER BY tenant, feature, minute)
)
ENGINE = MergeTree
-- No PARTITION BY: an insert must stay one part to be atomic with its Kafka mark.
-- Counters and breadth read one account's features over a time range.
ORDER BY (tenant, account, feature, minute);
