"""The writer isolates rows ClickHouse refuses, and refuses to dead-letter a systemic failure."""

from __future__ import annotations

import pytest

from indexer.networks.events import FlowEvent
from pipelines.clickhouse.migrate import migrate
from pipelines.clickhouse.tables import USAGE_FEES
from pipelines.sink.rows import Source, flow_row
from pipelines.sink.writer import ClickHouseUnavailable, Writer


def row(i: int, usd: str | None = None) -> tuple:
    e = FlowEvent(signature=f"s{i}", ix_path="0", network="helium", flow_class="usage_fee", subtype="data_transfer",
                  slot=i, block_time=1774656000, day="2026-03-28", program_id="p", program="x", instruction="i",
                  mint="M", symbol="DC", amount_raw=i, decimals=0, usd=usd)
    return flow_row(e.to_dict())[1]


def srcs(n: int) -> list[Source]:
    return [Source("t", 0, i, 0, None, b"", None) for i in range(n)]


def test_bisect_isolates_each_refused_row(ch_client, ch_database):
    migrate(ch_client, ch_database)
    bad = {7, 300, 301, 999}
    rows = [row(i, "1e40" if i in bad else None) for i in range(1000)]
    failed = Writer(ch_client, ch_database).insert(USAGE_FEES, rows, srcs(1000))
    assert sorted(f.source.offset for f in failed) == sorted(bad)
    assert all(f.reason == "insert_failed" and "OverflowError" in f.detail for f in failed)
    assert ch_client.query(f"SELECT count(), sum(amount_raw) FROM {ch_database}.usage_fees FINAL").result_rows == \
        [(996, sum(range(1000)) - sum(bad))]


def test_every_row_failing_is_systemic_not_poison(ch_client, ch_database):
    migrate(ch_client, ch_database)
    ch_client.command(f"DROP TABLE {ch_database}.usage_fees")
    with pytest.raises(ClickHouseUnavailable, match="every row"):
        Writer(ch_client, ch_database).insert(USAGE_FEES, [row(i) for i in range(10)], srcs(10))
