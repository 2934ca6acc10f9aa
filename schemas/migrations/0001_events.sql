-- The raw event log: every accepted event exactly once. It is the source of truth that meters,
-- counters and activations can always be recomputed from, so nothing here is pre-aggregated.
CREATE TABLE IF NOT EXISTS events
(
    tenant             LowCardinality(String),
    type               LowCardinality(String),
    message_id         String,
    event              LowCardinality(String),
    account            String,
    user_id            String,
    anonymous_id       String,
    -- Corrected event time (timestamp - (sentAt - receivedAt)), always UTC; zones apply at read time.
    timestamp          DateTime64(3, 'UTC'),
    original_timestamp Nullable(DateTime64(3, 'UTC')),
    sent_at            Nullable(DateTime64(3, 'UTC')),
    received_at        DateTime64(3, 'UTC'),
    -- Where the event was read from Kafka: a redelivery of the same message has the same place,
    -- a re-sent copy (SDK retry, re-posted batch) another one. That tells the two apart.
    kafka_partition    UInt32,
    kafka_offset       UInt64,
    stored_at          DateTime64(3, 'UTC') DEFAULT now64(3),
    -- JSON text, kept byte-exact: it never fails an insert, whatever keys or nesting a sender uses,
    -- and stays queryable with JSONExtract*(properties, 'key') or properties::JSON at read time.
    properties         String CODEC(ZSTD(3)),
    traits             String CODEC(ZSTD(3)),
    context            String CODEC(ZSTD(3)),
    -- Answers "is this (tenant, messageId) already stored?" from a copy sorted by id, kept in the
    -- same parts as the rows, so an id is visible exactly when its event is: the dedup check.
    PROJECTION by_message_id
    (
        SELECT tenant, message_id, timestamp, kafka_partition, kafka_offset
        ORDER BY tenant, message_id
    )
)
ENGINE = MergeTree
-- Month partitions: billing periods are months, a late event touches one partition, and old
-- months can be moved or dropped whole; the dedup check prunes to the months it must look at.
PARTITION BY toYYYYMM(timestamp)
-- Meters and counters read one tenant's events of a few names over a time range.
ORDER BY (tenant, event, timestamp)
SETTINGS deduplicate_merge_projection_mode = 'rebuild'
