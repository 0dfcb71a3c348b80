-- USD prices the user loads (token symbol, UTC day, USD per whole token); the newest load of a
-- (token, day) wins. No price is ever guessed: a day without a price gives NULL USD in the views.
CREATE TABLE IF NOT EXISTS ${db}.prices ${on_cluster}
(
    token     LowCardinality(String),
    day       Date,
    usd       Decimal(38, 12),
    source    LowCardinality(String) DEFAULT '',
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ${replicated}ReplacingMergeTree(loaded_at)
PARTITION BY toYear(day)
ORDER BY (token, day);

-- Fixed prices that hold on every day (Helium Data Credits are pegged: 1 DC = 0.00001 USD).
-- A peg wins over a daily price. Users may add their own (e.g. a stablecoin).
CREATE TABLE IF NOT EXISTS ${db}.price_pegs ${on_cluster}
(
    token     LowCardinality(String),
    usd       Decimal(38, 12),
    note      String DEFAULT '',
    loaded_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = ${replicated}ReplacingMergeTree(loaded_at)
ORDER BY token;

INSERT INTO ${db}.price_pegs (token, usd, note, loaded_at)
SELECT 'DC', toDecimal128('0.00001', 12), 'Helium Data Credit peg', toDateTime64('1970-01-01 00:00:00', 3, 'UTC')
WHERE (SELECT count() FROM ${db}.price_pegs WHERE token = 'DC') = 0;
