-- Every attempt to deliver a usage alert to a webhook endpoint, and what it left the delivery
-- as: the webhook sender's durable queue (a delivery whose latest row is `pending` is resumed
-- after a restart), the log GET /v1/webhooks/deliveries lists, and where
-- `usage-stream webhooks resend` finds a record again. Readers take each delivery's (tenant,
-- record_id, endpoint) latest row: the highest attempt, then the latest written.
CREATE TABLE IF NOT EXISTS webhook_deliveries
(
    tenant           LowCardinality(String),
    -- The endpoint's configured name, or its place in [[webhooks]]; never its URL
    endpoint         LowCardinality(String),
    -- The URL without credentials, query or fragment, as it was at this attempt
    url              String,
    -- The alert record's id: the `webhook-id` header of every attempt and re-send
    record_id        String,
    kind             LowCardinality(String),
    account          String,
    -- 0: recorded as pending when read from Kafka, before any try; then 1, 2, … per try
    attempt          UInt32,
    -- The delivery after this row: pending | delivered | failed
    status           LowCardinality(String),
    -- The endpoint's HTTP status; 0 when there was none (row 0, timeout, refused connection)
    status_code      UInt16,
    error            String,
    latency_seconds  Float64,
    -- When the delivery was first recorded: its endpoint's `retry_for` runs from here
    created_at       DateTime64(3, 'UTC'),
    attempted_at     DateTime64(3, 'UTC'),
    -- When a pending delivery is tried next; NULL once it is delivered or failed
    next_attempt_at  Nullable(DateTime64(3, 'UTC')),
    -- Where the record was read: the sender that is assigned the partition resumes its
    -- pending deliveries
    topic            LowCardinality(String),
    kafka_partition  UInt32,
    kafka_offset     UInt64,
    -- The body exactly as sent: resumed and re-sent attempts sign and send the same bytes
    payload          String CODEC(ZSTD(3)),
    written_at       DateTime64(3, 'UTC') DEFAULT now64(3),
    -- `resend ID` and the sender's check for records it has seen know the id, not the tenant
    INDEX record_id_bloom record_id TYPE bloom_filter GRANULARITY 4
)
-- An append-only log, one row per attempt and never updated: the latest row of a delivery is
-- its state, so a row written twice after a crash changes nothing.
ENGINE = MergeTree
-- By month of the delivery: old months can be dropped whole; resumes read only recent ones.
PARTITION BY toYYYYMM(created_at)
-- A tenant's deliveries together (the API), each delivery's attempts side by side in order.
ORDER BY (tenant, record_id, endpoint, attempt);
