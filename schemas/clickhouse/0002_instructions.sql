-- Every decoded instruction of a watched program (the instructions topic), for audit and ad-hoc
-- analysis. Same dedup/commitment scheme as the flow tables; `day` is the block's UTC day.
-- args, accounts and extra_accounts are JSON text (String) so the DDL runs on every ClickHouse version.
CREATE TABLE IF NOT EXISTS ${db}.instructions ${on_cluster}
(
    event_id           String,
    signature          String,
    ix_path            LowCardinality(String),
    network            LowCardinality(String),
    day                Date,
    block_time         DateTime64(3, 'UTC'),
    slot               UInt64,
    program_id         LowCardinality(String),
    program            LowCardinality(String),
    instruction        LowCardinality(String),
    args               String,
    accounts           String,
    extra_accounts     String,
    outer_program      LowCardinality(String),
    outer_instruction  LowCardinality(String),
    parent_instruction LowCardinality(String),
    tx_error           Nullable(String),
    commitment         LowCardinality(String),
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
