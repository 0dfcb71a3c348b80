-- Flow events (FlowEvent schema v1), one table per question users ask:
--   usage_fees  = flow_class usage_fee   (who pays for the service)
--   emissions   = flow_class emission    (new tokens minted as rewards)
--   other_flows = purchase, reversal, distribution, transfer, other
-- Exactly-once in effect: ReplacingMergeTree(version, is_deleted) keyed by event_id. The sorting
-- key holds only columns that never change for an event_id (network, accounting day, event_id), so
-- every version of an event (re-delivery, promotion, retraction) collapses onto one row.
-- version = slot * 4 + rank(commitment): confirmed 1, finalized 2, retracted 3 (see README).
CREATE TABLE IF NOT EXISTS ${db}.usage_fees ${on_cluster}
(
    event_id           String,
    signature          String,
    ix_path            LowCardinality(String),
    leg                Nullable(UInt16),
    network            LowCardinality(String),
    flow_class         LowCardinality(String),
    subtype            LowCardinality(String),
    day                Date,
    block_time         DateTime64(3, 'UTC'),
    slot               UInt64,
    epoch              Nullable(UInt64),
    program_id         LowCardinality(String),
    program            LowCardinality(String),
    instruction        LowCardinality(String),
    outer_program      LowCardinality(String),
    outer_instruction  LowCardinality(String),
    parent_instruction LowCardinality(String),
    mint               LowCardinality(String),
    symbol             LowCardinality(String),
    decimals           UInt8,
    amount_raw         UInt128,
    -- exact: computed by the server from the integer amount, never from a float
    amount             Decimal(38, 12) DEFAULT toDecimal128(amount_raw, 12) / toDecimal128(intExp10(decimals), 0),
    usd                Nullable(Decimal(38, 12)),
    usd_price          Nullable(Decimal(38, 12)),
    payer_owner        String,
    payer_account      String,
    recipient_owner    String,
    recipient_account  String,
    sub_dao            LowCardinality(String),
    commitment         LowCardinality(String),
    reason             String,
    rule_version       LowCardinality(String),
    schema_version     LowCardinality(String),
    version            UInt64,
    is_deleted         UInt8,
    inserted_at        DateTime64(3, 'UTC') DEFAULT now64(3),
    INDEX idx_slot slot TYPE minmax GRANULARITY 1,
    INDEX idx_signature signature TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ${replicated}ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(day)
ORDER BY (network, day, event_id);

CREATE TABLE IF NOT EXISTS ${db}.emissions ${on_cluster} AS ${db}.usage_fees;

CREATE TABLE IF NOT EXISTS ${db}.other_flows ${on_cluster} AS ${db}.usage_fees;
