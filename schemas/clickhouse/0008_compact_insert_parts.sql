-- Insert-sized parts in the Compact format (one data file per part instead of two or three files per
-- column). The default (min_bytes_for_wide_part = 10 MiB) made every sink batch of these tables a Wide
-- part: ~100 files for instructions, ~145 for a flow table (LowCardinality columns add dictionary
-- files), each created, checksummed and its marks compressed, then read again and deleted by the
-- first merge. Measured on the day mix (schemas/clickhouse/README.md, "Insert cost"): the engine's
-- CPU per inserted row drops by ~2-3 us of ~17. Parts above 128 MiB uncompressed (merge results of a
-- few hundred thousand rows) are still Wide, where per-column files pay off for reads. Only the part
-- format changes: the rows, the merges (ReplacingMergeTree dedup) and every query result stay the same.
-- Existing parts keep their format until a merge rewrites them.
ALTER TABLE ${db}.usage_fees ${on_cluster} MODIFY SETTING min_bytes_for_wide_part = 134217728;

ALTER TABLE ${db}.emissions ${on_cluster} MODIFY SETTING min_bytes_for_wide_part = 134217728;

ALTER TABLE ${db}.other_flows ${on_cluster} MODIFY SETTING min_bytes_for_wide_part = 134217728;

ALTER TABLE ${db}.instructions ${on_cluster} MODIFY SETTING min_bytes_for_wide_part = 134217728;
