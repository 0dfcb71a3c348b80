"""The read side: flows_daily / invoice_daily give exact, deduplicated numbers, priced from the
events' own USD, the pegs, or the user's daily prices, and never a guessed USD."""

from __future__ import annotations

from decimal import Decimal

import pytest

from indexer.networks.events import FlowEvent
from pipelines.clickhouse.migrate import migrate
from pipelines.clickhouse.queries import table_counts, totals
from pipelines.clickhouse.tables import COMMITMENT_STATUS, flow_table
from pipelines.sink.rows import flow_row, status_row
from pipelines.sink.writer import Writer

DAY = "2026-03-28"
MINTS = {"DC": ("dcuc8Amr83Wz27ZkQ2K9NS6r8zRpf1J6cvArEBDZDmm", 0), "HNT": ("hntyVP6YFm1Hg25TN9WGLqM12b8TQmcknKrdu1oxWux", 8),
         "MOBILE": ("mb1eu7TzEc71KxDpsmsKoucSSuuoGLv1drys1oP2jh6", 6),
         "RENDER": ("rndrizKT3MK1iimdxRdWabcF7Zg7AR5T4nud4EkHBof", 8)}


def ev(sig: str, flow_class: str, subtype: str, symbol: str, amount: int, *, network: str = "helium",
       day: str = DAY, slot: int = 10, usd: str | None = None, leg: int | None = None) -> FlowEvent:
    mint, decimals = MINTS[symbol]
    return FlowEvent(signature=sig, ix_path="0", leg=leg, network=network, flow_class=flow_class,
                     subtype=subtype, slot=slot, block_time=1774656000, day=day, program_id="p", program="x",
                     instruction="i", mint=mint, symbol=symbol, amount_raw=amount, decimals=decimals, usd=usd)


@pytest.fixture
def db(ch_client, ch_database):
    migrate(ch_client, ch_database)
    return ch_database


def write(client, db: str, events: list[FlowEvent]) -> None:
    w = Writer(client, db)
    by_table: dict = {}
    for e in events:
        spec, row = flow_row(e.to_dict())
        by_table.setdefault(spec, []).append(row)
    for spec, rows in by_table.items():
        assert w.insert(spec, rows, [None] * len(rows)) == []
    w.reconcile(0, 10**12)


def helium_day() -> list[FlowEvent]:
    return [
        ev("u1", "usage_fee", "data_transfer", "DC", 300_000),          # 3 USD at the DC peg
        ev("u2", "usage_fee", "data_transfer", "DC", 200_000),          # 2 USD
        ev("u3", "usage_fee", "onboarding", "DC", 4_000_000),           # 40 USD
        ev("u4", "usage_fee", "onboarding", "MOBILE", 1_500_000),       # 1.5 MOBILE (historical era)
        ev("e1", "emission", "rewards_escrow", "HNT", 10_000_000_000),  # 100 HNT
        ev("e2", "emission", "delegator_pool", "HNT", 2_500_000_000),   # 25 HNT
        ev("e3", "emission", "rewards_escrow", "MOBILE", 7_000_000),    # 7 MOBILE
        ev("p1", "purchase", "hnt_burned", "HNT", 50_000_000, leg=0, usd="2.1"),  # the program's own price
        ev("p1", "purchase", "dc_minted", "DC", 210_000, leg=1),
        ev("r1", "reversal", "no_emit", "HNT", 100_000_000),            # 1 HNT burned back
        ev("d1", "distribution", "lazy_distributor", "HNT", 0),         # zero payouts are events too
    ]


def test_invoice_daily_with_prices(ch_client, db):
    write(ch_client, db, helium_day())
    ch_client.command(f"INSERT INTO {db}.prices (token, day, usd) VALUES ('HNT', '{DAY}', 4), ('MOBILE', '{DAY}', 0.002)")
    row = ch_client.query(f"SELECT * FROM {db}.invoice_daily").named_results()
    (inv,) = list(row)
    assert inv["network"] == "helium" and str(inv["day"]) == DAY
    assert inv["usage_usd"] == Decimal("45.003")                       # 3 + 2 + 40 + 1.5 MOBILE x 0.002
    assert inv["usage_usd_by_subtype"] == {"data_transfer": Decimal("5"), "onboarding": Decimal("40.003")}
    assert inv["usage_tokens"] == {"DC": Decimal("4500000"), "MOBILE": Decimal("1.5")}
    assert inv["emission_tokens"] == {"HNT": Decimal("125"), "MOBILE": Decimal("7")}
    assert inv["emission_tokens_by_destination"] == {"rewards_escrow": {"HNT": Decimal("100"), "MOBILE": Decimal("7")},
                                                     "delegator_pool": {"HNT": Decimal("25")}}
    assert inv["emission_usd"] == Decimal("500.014")                   # 125 x 4 + 7 x 0.002
    assert inv["emission_usd_by_destination"] == {"rewards_escrow": Decimal("400.014"), "delegator_pool": Decimal("100")}
    assert inv["purchase_tokens"] == {"HNT": Decimal("0.5"), "DC": Decimal("210000")}
    assert inv["purchase_usd_by_subtype"] == {"hnt_burned": Decimal("2.1"), "dc_minted": Decimal("2.1")}
    assert inv["reversal_tokens"] == {"HNT": Decimal("1")}
    assert inv["reversal_usd"] == Decimal("4")
    assert inv["net_emission_usd"] == Decimal("496.014")
    assert inv["usage_emission_ratio"] == pytest.approx(45.003 / 500.014)
    assert inv["usage_net_emission_ratio"] == pytest.approx(45.003 / 496.014)
    assert inv["events_by_class"] == {"usage_fee": 4, "emission": 3, "purchase": 2, "reversal": 1, "distribution": 1}


def test_missing_price_gives_null_usd_never_a_partial_sum(ch_client, db):
    write(ch_client, db, helium_day())
    inv = next(iter(ch_client.query(f"SELECT usage_usd, usage_usd_by_subtype, emission_usd, usage_emission_ratio "
                                    f"FROM {db}.invoice_daily").named_results()))
    assert inv["usage_usd"] is None                  # MOBILE onboarding fee has no price
    assert inv["usage_usd_by_subtype"] == {"data_transfer": Decimal("5"), "onboarding": None}
    assert inv["emission_usd"] is None and inv["usage_emission_ratio"] is None
    # a later load of the same (token, day) replaces the earlier one
    ch_client.command(f"INSERT INTO {db}.prices (token, day, usd, loaded_at) VALUES "
                      f"('HNT', '{DAY}', 1, '2026-01-01'), ('MOBILE', '{DAY}', 1, '2026-01-01')")
    ch_client.command(f"INSERT INTO {db}.prices (token, day, usd, loaded_at) VALUES "
                      f"('HNT', '{DAY}', 3, '2026-01-02'), ('MOBILE', '{DAY}', 0.01, '2026-01-02')")
    assert ch_client.query(f"SELECT usage_usd, emission_usd FROM {db}.invoice_daily").result_rows == \
        [(Decimal("45.015"), Decimal("375.07"))]


def test_rollups_are_deduplicated_whatever_the_merge_state(ch_client, db):
    events = helium_day()
    write(ch_client, db, events)
    first = totals(ch_client, db)
    invoice = ch_client.query(f"SELECT * FROM {db}.invoice_daily").result_rows
    write(ch_client, db, events)
    write(ch_client, db, events[:4])
    assert totals(ch_client, db) == first
    assert ch_client.query(f"SELECT * FROM {db}.invoice_daily").result_rows == invoice
    ch_client.command(f"OPTIMIZE TABLE {db}.usage_fees FINAL")
    assert totals(ch_client, db) == first
    assert table_counts(ch_client, db)["usage_fees"] == 4
    assert first[0] == {"network": "helium", "day": DAY, "flow_class": "distribution", "subtype": "lazy_distributor",
                        "mint": MINTS["HNT"][0], "amount_raw": 0}


def test_totals_are_exact_beyond_u64(ch_client, db):
    big = 2**64 - 1
    write(ch_client, db, [ev(f"b{i}", "transfer", "token_transfer", "RENDER", big, network="render") for i in range(3)])
    (line,) = totals(ch_client, db)
    assert line["amount_raw"] == 3 * big
    amount = ch_client.query(f"SELECT amount FROM {db}.flows_daily").result_rows[0][0]
    assert amount == Decimal(3 * big).scaleb(-8)


def test_reconcile_applies_statuses_in_either_order(ch_client, db):
    w = Writer(ch_client, db)
    # status first, for a transaction whose events are not there yet
    spec, srow = status_row({"signature": "u1", "slot": 10, "status": "retracted", "event_ids": ["u1:0"]})
    w.insert(spec, [srow], [None])
    write(ch_client, db, helium_day())          # write() reconciles after inserting, like the sink
    assert ch_client.query(f"SELECT count() FROM {db}.flows WHERE signature = 'u1'").result_rows == [(0,)]
    # status after the events
    rows = [status_row({"signature": s, "slot": 10, "status": "finalized"})[1] for s in ("u2", "e1")]
    w.insert(COMMITMENT_STATUS, rows, [None, None])
    w.reconcile(10, 10)
    assert ch_client.query(f"SELECT signature, commitment FROM {db}.flows WHERE commitment = 'finalized' "
                           "ORDER BY signature").result_rows == [("e1", "finalized"), ("u2", "finalized")]
    assert flow_table("usage_fee").name == "usage_fees"
