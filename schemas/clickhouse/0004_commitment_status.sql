-- Promotions and retractions from the status topic, keyed by (slot, signature): the state of a
-- transaction as included in one slot. The sink reconciles the event tables against this table after
-- every batch, so a status that arrives before its flow (crash, replay, topics read at different
-- speeds) is still applied when the flow lands. Sorted by slot because reconciliation reads slot ranges.
CREATE TABLE IF NOT EXISTS ${db}.commitment_status ${on_cluster}
(
    signature   String,
    slot        UInt64,
    status      LowCardinality(String),
    event_ids   Array(String),
    block_time  DateTime64(3, 'UTC'),
    version     UInt64,
    inserted_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ${replicated}ReplacingMergeTree(version)
PARTITION BY intDiv(slot, 10000000)
ORDER BY (slot, signature);
