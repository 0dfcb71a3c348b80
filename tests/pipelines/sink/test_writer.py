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




class _FillsUpAfterFirstInsert:
    """The real client; after its first successful insert the real table gets a parts limit it is
    already over (merges stopped), as a server falling behind on merges mid-batch does."""

    def __init__(self, client, table: str) -> None:
        self._client, self._table, self.inserts = client, table, 0

    def insert(self, *args, **kwargs):
        out = self._client.insert(*args, **kwargs)
        self.inserts += 1
        if self.inserts == 1:
            self._client.command(f"ALTER TABLE {self._table} MODIFY SETTING parts_to_delay_insert = 1, "
                                 "parts_to_throw_insert = 1")
        return out

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_a_transient_clickhouse_failure_is_retried_not_dead_lettered(ch_client, ch_database):
    """Issue 9: while a batch with one poison row is bisected, the server starts refusing inserts
    for its own state (a real TOO_MANY_PARTS: merges stopped). The good rows refused then must not be
    dead-lettered (an event lost): the batch comes back as ClickHouseUnavailable, retried whole later."""
    migrate(ch_client, ch_database)
    table = f"{ch_database}.usage_fees"
    ch_client.command(f"SYSTEM STOP MERGES {table}")
    batch = [row(i) for i in range(9)] + [row(9, "1e40")]                # row 9: refused by the client
    writer = Writer(_FillsUpAfterFirstInsert(ch_client, table), ch_database)
    with pytest.raises(ClickHouseUnavailable, match="transiently"):
        writer.insert(USAGE_FEES, batch, srcs(10))
    ch_client.command(f"ALTER TABLE {table} MODIFY SETTING parts_to_delay_insert = 1000, parts_to_throw_insert = 3000")
    failed = Writer(ch_client, ch_database).insert(USAGE_FEES, batch, srcs(10))   # the retry
    assert [f.source.offset for f in failed] == [9]                     # only the poison row
    assert ch_client.query(f"SELECT count(), sum(amount_raw) FROM {table} FINAL").result_rows == [(9, sum(range(9)))]
    ch_client.command(f"SYSTEM START MERGES {table}")
