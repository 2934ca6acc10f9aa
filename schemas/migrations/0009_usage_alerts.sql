-- Usage alerts: every threshold crossing, resolve and tier change of an account's plan, as the
-- worker sent it to the topic `usage_alerts` first. A record is about one (tenant, account,
-- meter, billing period); its id is made of what it is about (threshold, arming generation,
-- kind), so a record sent again after a crash is the same row again.
CREATE TABLE IF NOT EXISTS usage_alerts
(
    id           String,
    kind         LowCardinality(String),
    tenant       LowCardinality(String),
    account      String,
    meter        LowCardinality(String),
    -- the billing period, YYYY-MM in the billing zone
    period       String,
    -- `80%` or `5000`; 'tier' for a tier change
    threshold    String,
    -- how many times the threshold re-armed before this record (tier changes: their count)
    generation   UInt32,
    level        Nullable(Decimal(38, 9)),
    quantity     Decimal(38, 9),
    included     Nullable(Decimal(38, 9)),
    plan         String,
    with_others  Array(String),
    tier_left    String,
    tier_entered String,
    late         Bool,
    at           DateTime64(3, 'UTC')
)
-- Replacing by id: a record written twice (sent again after a crash) keeps one row once merged:
-- readers take DISTINCT ids, cheap on a table of crossings (a few per account and period).
ENGINE = ReplacingMergeTree
-- By period: a month's alerts drop together when retention asks.
PARTITION BY substring(period, 1, 4)
-- An account's records of a period are one narrow range: the worker's recovery and
-- `/v1/alerts?account=` read exactly that.
ORDER BY (tenant, account, meter, period, threshold, generation, kind, id);

-- Which plan an account is on, from the `plan` trait of its group calls, effective from each
-- call's event time: what the worker reads back after a restart.
CREATE TABLE IF NOT EXISTS account_plans
(
    tenant       LowCardinality(String),
    account      String,
    effective_at DateTime64(3, 'UTC'),
    plan         String,
    message_id   String
)
-- A call seen twice (a batch read again) is the same row: merged away, harmless before then.
ENGINE = ReplacingMergeTree
-- A few rows per account, read by account: no partitioning needed.
ORDER BY (tenant, account, effective_at, message_id);
