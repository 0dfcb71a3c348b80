-- Read side. Every view reads the event tables through FINAL, so a duplicate (re-delivery, replay,
-- crash before the offset commit) or a retracted event (is_deleted = 1) can never be counted, whatever
-- state background merges are in. See README.md for why the rollups are views and not incremental MVs.

-- All live flow events, deduplicated and without retractions.
CREATE OR REPLACE VIEW ${db}.flows ${on_cluster} AS
SELECT * FROM ${db}.usage_fees FINAL WHERE is_deleted = 0
UNION ALL
SELECT * FROM ${db}.emissions FINAL WHERE is_deleted = 0
UNION ALL
SELECT * FROM ${db}.other_flows FINAL WHERE is_deleted = 0;

-- The newest price loaded for each (token, day).
CREATE OR REPLACE VIEW ${db}.prices_latest ${on_cluster} AS
SELECT token, day, argMax(usd, loaded_at) AS usd
FROM ${db}.prices
GROUP BY token, day;

-- Daily rollup: one row per (network, day, flow_class, subtype, mint) with exact totals. USD = the
-- events' own usd where they carry one, else amount x the day's price (a peg wins); NULL when any part
-- of the amount has no price (never a partial sum passed off as the total).
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
    if(a.unpriced_events = 0, a.usd_from_events,
       if(usd_price IS NULL, NULL,
          a.usd_from_events
          + toDecimal128(toDecimal256(a.unpriced_amount, 12) * toDecimal256(assumeNotNull(usd_price), 12), 12)))
        AS usd
FROM
(
    SELECT
        network, day, flow_class, subtype, mint,
        any(symbol) AS symbol_any,
        any(decimals) AS decimals_any,
        count() AS events_n,
        sum(amount_raw) AS amount_raw_sum,
        sum(amount) AS amount_sum,
        sumIf(assumeNotNull(usd), usd IS NOT NULL) AS usd_from_events,
        countIf(usd IS NULL) AS unpriced_events,
        sumIf(amount, usd IS NULL) AS unpriced_amount
    FROM ${db}.flows
    GROUP BY network, day, flow_class, subtype, mint
) AS a
LEFT JOIN (SELECT token, argMax(usd, loaded_at) AS usd, 1 AS known FROM ${db}.price_pegs GROUP BY token) AS peg
    ON peg.token = a.symbol_any
LEFT JOIN (SELECT token, day, usd, 1 AS known FROM ${db}.prices_latest) AS px
    ON px.token = a.symbol_any AND px.day = a.day;

CREATE OR REPLACE VIEW ${db}.usage_fees_daily ${on_cluster} AS
SELECT * FROM ${db}.flows_daily WHERE flow_class = 'usage_fee';

CREATE OR REPLACE VIEW ${db}.emissions_daily ${on_cluster} AS
SELECT * FROM ${db}.flows_daily WHERE flow_class = 'emission';

-- The invoice: per network and UTC (accounting) day, what buyers paid (usage fees) against what the
-- network minted (emissions). Token maps are keyed by symbol; *_by_subtype / *_by_destination by subtype.
CREATE OR REPLACE VIEW ${db}.invoice_daily ${on_cluster} AS
WITH by_subtype AS
(
    SELECT
        network, day, flow_class, subtype,
        sumMap(map(symbol, amount)) AS tokens,
        sum(events) AS subtype_events,
        if(countIf(usd IS NULL) > 0, NULL, sum(assumeNotNull(usd))) AS subtype_usd
    FROM ${db}.flows_daily
    GROUP BY network, day, flow_class, subtype
)
SELECT
    network,
    day,
    if(countIf(flow_class = 'usage_fee' AND subtype_usd IS NULL) > 0, NULL,
       sumIf(assumeNotNull(subtype_usd), flow_class = 'usage_fee')) AS usage_usd,
    CAST(mapFromArrays(arrayMap(x -> x.1, groupArrayIf((subtype, subtype_usd), flow_class = 'usage_fee')),
                       arrayMap(x -> x.2, groupArrayIf((subtype, subtype_usd), flow_class = 'usage_fee'))),
         'Map(String, Nullable(Decimal(38, 12)))') AS usage_usd_by_subtype,
    sumMapIf(tokens, flow_class = 'usage_fee') AS usage_tokens,
    sumMapIf(tokens, flow_class = 'emission') AS emission_tokens,
    CAST(mapFromArrays(groupArrayIf(subtype, flow_class = 'emission'), groupArrayIf(tokens, flow_class = 'emission')),
         'Map(String, Map(String, Decimal(38, 12)))') AS emission_tokens_by_destination,
    if(countIf(flow_class = 'emission' AND subtype_usd IS NULL) > 0, NULL,
       sumIf(assumeNotNull(subtype_usd), flow_class = 'emission')) AS emission_usd,
    CAST(mapFromArrays(arrayMap(x -> x.1, groupArrayIf((subtype, subtype_usd), flow_class = 'emission')),
                       arrayMap(x -> x.2, groupArrayIf((subtype, subtype_usd), flow_class = 'emission'))),
         'Map(String, Nullable(Decimal(38, 12)))') AS emission_usd_by_destination,
    sumMapIf(tokens, flow_class = 'purchase') AS purchase_tokens,
    CAST(mapFromArrays(arrayMap(x -> x.1, groupArrayIf((subtype, subtype_usd), flow_class = 'purchase')),
                       arrayMap(x -> x.2, groupArrayIf((subtype, subtype_usd), flow_class = 'purchase'))),
         'Map(String, Nullable(Decimal(38, 12)))') AS purchase_usd_by_subtype,
    sumMapIf(tokens, flow_class = 'reversal') AS reversal_tokens,
    if(countIf(flow_class = 'reversal' AND subtype_usd IS NULL) > 0, NULL,
       sumIf(assumeNotNull(subtype_usd), flow_class = 'reversal')) AS reversal_usd,
    emission_usd - reversal_usd AS net_emission_usd,
    if(emission_usd > 0, toFloat64(usage_usd) / toFloat64(emission_usd), NULL) AS usage_emission_ratio,
    if(net_emission_usd > 0, toFloat64(usage_usd) / toFloat64(net_emission_usd), NULL) AS usage_net_emission_ratio,
    sumMap(map(toString(flow_class), subtype_events)) AS events_by_class
FROM by_subtype
GROUP BY network, day;
