-- Activation outcomes: exactly one row per (tenant, rule, subject), ever. Either "activation"
-- (with the qualifying event and the time to value) or "activation_missed" (the window closed
-- without it). The same records go to the Kafka topic `activations`.
CREATE TABLE IF NOT EXISTS activations
(
    -- Deterministic from (tenant, rule, account, user): a repeat anywhere is recognisable.
    id                    String,
    type                  LowCardinality(String),
    tenant                LowCardinality(String),
    rule                  LowCardinality(String),
    subject               LowCardinality(String),
    account               String,
    -- empty for account rules
    user_id               String,
    started_at            DateTime64(3, 'UTC'),
    deadline              DateTime64(3, 'UTC'),
    activated_at          Nullable(DateTime64(3, 'UTC')),
    time_to_value_ms      Nullable(UInt64),
    qualifying_message_id String,
    -- Where the deciding event was read from Kafka, for tracing an outcome back to its event.
    kafka_partition       UInt32,
    kafka_offset          UInt64,
    written_at            DateTime64(3, 'UTC') DEFAULT now64(3)
)
-- Plain MergeTree, no read-time dedup: the writer checks the ids before inserting, and one
-- subject's outcome is decided by the one worker that owns its Kafka partition.
ENGINE = MergeTree
-- No PARTITION BY: one row per subject and rule, ever; a small table read whole by tenant.
-- The subject is the key's suffix: the writer's id check and "one tenant's rule" or "one
-- account" reads each touch a narrow range.
ORDER BY (tenant, rule, account, user_id);

-- When each subject's window opened: the signup cohorts, including subjects not decided yet.
-- An out-of-order earlier start moves a window earlier and a restart may write a start again,
-- so a subject can have several rows: readers take min(started_at), exact whatever the repeats.
CREATE TABLE IF NOT EXISTS activation_starts
(
    tenant          LowCardinality(String),
    rule            LowCardinality(String),
    account         String,
    user_id         String,
    started_at      DateTime64(3, 'UTC'),
    kafka_partition UInt32,
    kafka_offset    UInt64,
    written_at      DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = MergeTree
-- No PARTITION BY: about one row per subject and rule; cohort queries read a tenant's rule whole.
ORDER BY (tenant, rule, account, user_id);
