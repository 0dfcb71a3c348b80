"""Known invoice data: a few days of Helium and Render flows with hand-computed expected figures,
written through the sink's own row builder and writer into a freshly migrated database."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import pytest

from indexer.networks.events import FlowEvent
from pipelines.clickhouse.migrate import migrate
from pipelines.clickhouse.tables import COMMITMENT_STATUS
from pipelines.sink.rows import flow_row, status_row
from pipelines.sink.writer import Writer

MINTS = {
    "HNT": ("hntyVP6YFm1Hg25TN9WGLqM12b8TQmcknKrdu1oxWux", 8),
    "DC": ("dcuc8Amr83Wz27ZkQ2K9NS6r8zRpf1J6cvArEBDZDmm", 0),
    "IOT": ("iotEVVZLEywoTn1QdwNPddxPWszn3zFhEot3MfL9fns", 6),
    "RENDER": ("rndrizKT3MK1iimdxRdWabcF7Zg7AR5T4nud4EkHBof", 8),
}
DAYS = ["2026-03-01", "2026-03-02", "2026-03-03"]
_DAY_TS = {d: 1772323200 + 86400 * i for i, d in enumerate(DAYS)}  # 2026-03-01T00:00Z + i days
_seq = itertools.count(1)


def event(network: str, day: str, flow_class: str, subtype: str, symbol: str, amount: Decimal | int,
          usd: str | None = None, usd_price: str | None = None) -> FlowEvent:
    mint, decimals = MINTS[symbol]
    n = next(_seq)
    return FlowEvent(
        signature=f"sig{n:06d}", ix_path="0", network=network, flow_class=flow_class, subtype=subtype,
        slot=1000 + n, block_time=_DAY_TS[day] + 3600, day=day, program_id="prog", program=network,
        instruction="ix", mint=mint, symbol=symbol, amount_raw=int(Decimal(amount) * 10**decimals),
        decimals=decimals, usd=usd, usd_price=usd_price,
    )


@dataclass
class Scenario:
    database: str
    events: list[FlowEvent]
    retracted: list[FlowEvent]
    prices: list[tuple[str, str, str]] = field(default_factory=list)


def scenario_events() -> tuple[list[FlowEvent], list[FlowEvent]]:
    """The events that count, and events later retracted (a forked block) that must not."""
    d1, d2, d3 = DAYS
    live = [
        # Helium usage (DC, pegged at $0.00001): d1 $10 + $40, d2 $20, d3 $30
        event("helium", d1, "usage_fee", "data_transfer", "DC", 1_000_000),
        event("helium", d1, "usage_fee", "onboarding", "DC", 4_000_000),
        event("helium", d2, "usage_fee", "data_transfer", "DC", 2_000_000),
        event("helium", d3, "usage_fee", "data_transfer", "DC", 3_000_000),
        # Helium purchases: 2 HNT burned at the oracle price $5 -> 1,000,000 DC each day
        *[e for d in DAYS for e in (
            event("helium", d, "purchase", "hnt_burned", "HNT", 2, usd="10", usd_price="5"),
            event("helium", d, "purchase", "dc_minted", "DC", 1_000_000, usd="10"))],
        # Helium emissions: 100 HNT to the rewards escrow + 10 HNT to delegators per epoch day
        *[e for d in DAYS for e in (
            event("helium", d, "emission", "rewards_escrow", "HNT", 100),
            event("helium", d, "emission", "delegator_pool", "HNT", 10))],
        # Helium reversal: 1 HNT not emitted on d2
        event("helium", d2, "reversal", "no_emit", "HNT", 1),
        # a distribution (already-minted rewards paid out) is not part of the invoice columns
        event("helium", d1, "distribution", "lazy_distributor", "IOT", 5),
        # Render: RENDER burned by the burn wallet vs RENDER minted, no USD price loaded
        event("render", d1, "usage_fee", "bme_burn", "RENDER", Decimal("50")),
        event("render", d1, "emission", "mint", "RENDER", 1000),
        event("render", d2, "usage_fee", "bme_burn", "RENDER", Decimal("80.5")),
        event("render", d2, "emission", "mint", "RENDER", 1000),
    ]
    retracted = [
        event("helium", d1, "usage_fee", "data_transfer", "DC", 999_000_000),
        event("render", d2, "emission", "mint", "RENDER", 5_000_000),
    ]
    return live, retracted


def write_events(client, database: str, events: list[FlowEvent], retracted: list[FlowEvent] = ()) -> None:
    """Insert like the sink does: every event twice (re-delivery), then retractions via statuses."""
    writer = Writer(client, database)
    by_table: dict[str, tuple] = {}
    for ev in [*events, *retracted, *events]:
        spec, row = flow_row(ev.to_dict())
        by_table.setdefault(spec.name, (spec, []))[1].append(row)
    for spec, rows in by_table.values():
        writer.insert_raw(spec, rows)
    statuses = [status_row({"signature": e.signature, "slot": e.slot, "status": "retracted",
                            "event_ids": [e.event_id], "block_time": e.block_time, "schema_version": "v1"})[1]
                for e in retracted]
    if statuses:
        writer.insert_raw(COMMITMENT_STATUS, statuses)
        writer.reconcile(min(e.slot for e in retracted), max(e.slot for e in retracted))


def load_prices(client, database: str, prices: list[tuple[str, str, str]]) -> None:
    for token, day, usd in prices:
        client.command(f"INSERT INTO {database}.prices (token, day, usd) VALUES ('{token}', '{day}', {usd})")


@pytest.fixture
def migrated_db(ch_client, ch_database) -> str:
    migrate(ch_client, ch_database)
    return ch_database


@pytest.fixture(scope="module")
def scenario(ch_client) -> Iterator[Scenario]:
    """Read-only for the tests, so built once per module."""
    database = f"rep_{uuid.uuid4().hex[:10]}"
    migrate(ch_client, database)
    live, retracted = scenario_events()
    write_events(ch_client, database, live, retracted)
    # HNT priced on d1 and d2 only: d3's emissions fall back to the purchases' oracle price
    prices = [("HNT", DAYS[0], "5"), ("HNT", DAYS[1], "5")]
    load_prices(ch_client, database, prices)
    yield Scenario(database, live, retracted, prices)
    ch_client.command(f"DROP DATABASE IF EXISTS {database} SYNC")
