-- Materialized daily rollups that stay exact: a per-day rollup recomputed from FINAL for the days
-- that changed, and a read side that uses it only for days that did not change since (README.md,
-- "Rollups"). Three parts:
--   1. flow_days_touched: every insert into a flow table (sink batch, replay, reconcile copy of a
--      promotion or retraction, manual INSERT) marks its (network, day) through an insert-triggered MV.
--   2. flows_daily_rollup: one row per (network, day) holding that day's groups, recomputed from FINAL
--      (flows_daily_recompute) by a refreshable MV every 30 s and on demand
--      (pipelines.clickhouse.rollups.refresh_rollups). `settled_until`: every touch before it is in the row.
--   3. flows_daily_groups: the rollup for settled days + the live FINAL aggregate for the days touched
--      since, so flows_daily / invoice_daily are exact at every moment, whatever the refresh state.

CREATE TABLE IF NOT EXISTS ${db}.flow_days_touched ${on_cluster}
(
    network    LowCardinality(String),
    day        Date,
    touched_at DateTime64(6, 'UTC')
)
ENGINE = ${replicated}ReplacingMergeTree(touched_at)
ORDER BY (network, day);

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.usage_fees_touched_mv ${on_cluster} TO ${db}.flow_days_touched
AS SELECT network, day, now64(6, 'UTC') AS touched_at FROM ${db}.usage_fees GROUP BY network, day;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.emissions_touched_mv ${on_cluster} TO ${db}.flow_days_touched
AS SELECT network, day, now64(6, 'UTC') AS touched_at FROM ${db}.emissions GROUP BY network, day;

CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.other_flows_touched_mv ${on_cluster} TO ${db}.flow_days_touched
AS SELECT network, day, now64(6, 'UTC') AS touched_at FROM ${db}.other_flows GROUP BY network, day;

-- Days that already hold events when this migration runs (the MVs above only see later inserts).
INSERT INTO ${db}.flow_days_touched (network, day, touched_at)
SELECT DISTINCT network, day, now64(6, 'UTC') FROM
(
    SELECT network, day FROM ${db}.usage_fees
    UNION ALL SELECT network, day FROM ${db}.emissions
    UNION ALL SELECT network, day FROM ${db}.other_flows
);

-- One row per (network, day): the day's groups as computed from FINAL at `computed_at`; the newest
-- computation wins. A day whose events were all retracted gets a row with no groups.
CREATE TABLE IF NOT EXISTS ${db}.flows_daily_rollup ${on_cluster}
(
    network       LowCardinality(String),
    day           Date,
    settled_until DateTime64(6, 'UTC'),
    computed_at   DateTime64(6, 'UTC'),
    groups        Array(Tuple(
                      flow_class      LowCardinality(String),
                      subtype         LowCardinality(String),
                      mint            LowCardinality(String),
                      symbol          LowCardinality(String),
                      decimals        UInt8,
                      events          UInt64,
                      amount_raw      UInt128,
                      amount          Decimal(38, 12),
                      usd_from_events Decimal(38, 12),
                      unpriced_events UInt64,
                      unpriced_amount Decimal(38, 12)))
)
ENGINE = ${replicated}ReplacingMergeTree(computed_at)
ORDER BY (network, day);

-- Days whose rollup row is missing or older than their last touch.
CREATE OR REPLACE VIEW ${db}.flow_days_unsettled ${on_cluster} AS
SELECT t.network AS network, t.day AS day
FROM (SELECT network, day, max(touched_at) AS touched FROM ${db}.flow_days_touched GROUP BY network, day) AS t
LEFT JOIN (SELECT network, day, argMax(settled_until, computed_at) AS settled
           FROM ${db}.flows_daily_rollup GROUP BY network, day) AS r
    ON r.network = t.network AND r.day = t.day
WHERE r.settled IS NULL OR t.touched >= r.settled;

-- The exact groups of the given days, straight from FINAL (the aggregate the session-1 view ran over
-- every day). Reads only the given days' ranges: the sorting keys start with (network, day).
CREATE OR REPLACE VIEW ${db}.flows_daily_live ${on_cluster} AS
SELECT
    network, day, flow_class, subtype, mint,
    any(symbol) AS symbol,
    any(decimals) AS decimals,
    count() AS events,
    sum(amount_raw) AS amount_raw_total,
    sum(amount) AS amount_total,
    sumIf(assumeNotNull(usd), usd IS NOT NULL) AS usd_from_events,
    countIf(usd IS NULL) AS unpriced_events,
    sumIf(amount, usd IS NULL) AS unpriced_amount
FROM ${db}.flows
GROUP BY network, day, flow_class, subtype, mint;

-- Recompute of the unsettled days (all touched days with full = 1, reading everything without the
-- day filter, which costs more than it saves then), for INSERT INTO flows_daily_rollup.
-- The day list is one scalar, evaluated once, so the rows and the groups they hold agree on it.
-- settled_until = start - grace: a touch stamped up to `grace` before its rows became visible
-- (a long insert) still leaves the day unsettled, to be recomputed by a later refresh.
CREATE OR REPLACE VIEW ${db}.flows_daily_recompute ${on_cluster} AS
WITH
    now64(6, 'UTC') AS started,
    (SELECT groupArray((network, day)) FROM
        (SELECT network, day FROM ${db}.flow_days_unsettled WHERE {full:UInt8} = 0
         UNION DISTINCT
         SELECT DISTINCT network, day FROM ${db}.flow_days_touched WHERE {full:UInt8} = 1)) AS days
SELECT
    d.1 AS network,
    d.2 AS day,
    started - toIntervalMillisecond({grace_ms:UInt32}) AS settled_until,
    started AS computed_at,
    arraySort(g -> (g.1, g.2, g.3), groupArrayIf(
        (g.flow_class, g.subtype, g.mint, g.symbol, g.decimals, g.events, g.amount_raw_total, g.amount_total,
         g.usd_from_events, g.unpriced_events, g.unpriced_amount), g.present = 1)) AS groups
FROM (SELECT arrayJoin(days) AS d) AS dd
LEFT JOIN
(
    SELECT *, 1 AS present FROM ${db}.flows_daily_live
    WHERE {full:UInt8} = 1 OR (network, day) IN (SELECT arrayJoin(days))
) AS g ON g.network = dd.d.1 AND g.day = dd.d.2
GROUP BY d;

-- Background refresh: every 30 s, the unsettled days are recomputed (a no-op when nothing changed).
-- The grace of 60 s covers a touch stamped before its insert's rows became visible.
CREATE MATERIALIZED VIEW IF NOT EXISTS ${db}.flows_daily_refresh ${on_cluster}
REFRESH EVERY 30 SECOND APPEND TO ${db}.flows_daily_rollup
AS SELECT * FROM ${db}.flows_daily_recompute(full = 0, grace_ms = 60000);

-- Every day's groups, exact at query time: the rollup row of each settled day, the live FINAL aggregate
-- of each unsettled one. The unsettled list is one scalar, so each day is taken from exactly one side.
CREATE OR REPLACE VIEW ${db}.flows_daily_groups ${on_cluster} AS
WITH (SELECT groupArray((network, day)) FROM ${db}.flow_days_unsettled) AS unsettled
SELECT * FROM
(
    SELECT
        r.network AS network, r.day AS day, g.flow_class AS flow_class, g.subtype AS subtype, g.mint AS mint,
        g.symbol AS symbol, g.decimals AS decimals, g.events AS events, g.amount_raw AS amount_raw_total,
        g.amount AS amount_total, g.usd_from_events AS usd_from_events, g.unpriced_events AS unpriced_events,
        g.unpriced_amount AS unpriced_amount
    FROM ${db}.flows_daily_rollup AS r FINAL
    ARRAY JOIN r.groups AS g
    WHERE (r.network, r.day) NOT IN (SELECT arrayJoin(unsettled))
    UNION ALL
    SELECT network, day, flow_class, subtype, mint, symbol, decimals, events, amount_raw_total, amount_total,
           usd_from_events, unpriced_events, unpriced_amount
    FROM ${db}.flows_daily_live
    WHERE (network, day) IN (SELECT arrayJoin(unsettled))
);

-- Same columns and meaning as in 0006; the per-group totals now come from flows_daily_groups.
CREATE OR REPLACE VIEW ${db}.flows_daily ${on_cluster} AS
SELECT
    a.network AS network,
    a.day AS day,
    a.flow_class AS flow_class,
    a.subtype AS subtype,
    a.mint AS mint,
    a.symbol_any AS symbol,
    a.decimals_any AS decimals,
    a.events_n AS events,
    a.amount_raw_sum AS amount_raw,
    a.amount_sum AS amount,
    multiIf(peg.known = 1, peg.usd, px.known = 1, px.usd, NULL) AS usd_price,
    if(a.unpriced_events_n = 0, a.usd_from_events_sum,
       if(usd_price IS NULL, NULL,
          a.usd_from_events_sum
          + toDecimal128(toDecimal256(a.unpriced_amount_sum, 12) * toDecimal256(assumeNotNull(usd_price), 12), 12)))
        AS usd
FROM
(
    SELECT
        network, day, flow_class, subtype, mint,
        any(symbol) AS symbol_any,
        any(decimals) AS decimals_any,
        sum(events) AS events_n,
        sum(amount_raw_total) AS amount_raw_sum,
        sum(amount_total) AS amount_sum,
        sum(usd_from_events) AS usd_from_events_sum,
        sum(unpriced_events) AS unpriced_events_n,
        sum(unpriced_amount) AS unpriced_amount_sum
    FROM ${db}.flows_daily_groups
    GROUP BY network, day, flow_class, subtype, mint
) AS a
LEFT JOIN (SELECT token, argMax(usd, loaded_at) AS usd, 1 AS known FROM ${db}.price_pegs GROUP BY token) AS peg
    ON peg.token = a.symbol_any
LEFT JOIN (SELECT token, day, usd, 1 AS known FROM ${db}.prices_latest) AS px
    ON px.token = a.symbol_any AND px.day = a.day;
