-- Nothing is dropped silently: undecodable input from the indexer (the deadletter topic, source
-- 'upstream') and messages the sink could not parse or insert (source 'sink') land here with the
-- reason and the raw bytes. event_id is deterministic (upstream: <signature>:<ix_path>:<stage>;
-- sink: kafka:<topic>:<partition>:<offset>) so a replay does not duplicate rows; `day` comes from the
-- block time, else the Kafka record timestamp (both fixed for a message, unlike the wall clock).
CREATE TABLE IF NOT EXISTS ${db}.dead_letters ${on_cluster}
(
    event_id      String,
    source        LowCardinality(String),
    network       LowCardinality(String),
    day           Date,
    time          DateTime64(3, 'UTC'),
    signature     String,
    slot          UInt64,
    ix_path       String,
    program_id    LowCardinality(String),
    program       LowCardinality(String),
    stage         LowCardinality(String),
    reason        String,
    detail        String,
    raw_hex       String,
    tx_error      Nullable(String),
    commitment    LowCardinality(String),
    extra         String,
    topic         LowCardinality(String),
    partition     UInt32,
    offset        UInt64,
    version       UInt64,
    is_deleted    UInt8,
    inserted_at   DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ${replicated}ReplacingMergeTree(version, is_deleted)
PARTITION BY toYYYYMM(day)
ORDER BY (network, day, event_id);
