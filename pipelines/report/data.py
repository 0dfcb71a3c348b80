"""Reading the invoice: `invoice_daily` rows for a window of days, plus the on-chain HNT price.

Why the extra price query: `invoice_daily` values emissions in USD only from prices the user loaded
(never guessed), so without a price file Helium's emissions have no USD and the ratio is unknown.
The chain itself states an HNT price in every Data Credit purchase (the oracle price the program
used, carried on the `hnt_burned` purchase events as `usd`); the report offers that as a clearly
labelled second source instead of leaving the main question unanswered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pipelines.clickhouse.migrate import check_identifier

NETWORKS = ("helium", "render")


@dataclass
class DayRow:
    """One `invoice_daily` row (network, accounting day), values exact (Decimal) where the view is."""

    network: str
    day: date
    usage_usd: Decimal | None
    usage_usd_by_subtype: dict[str, Decimal | None]
    usage_tokens: dict[str, Decimal]
    emission_tokens: dict[str, Decimal]
    emission_tokens_by_destination: dict[str, dict[str, Decimal]]
    emission_usd: Decimal | None
    purchase_tokens: dict[str, Decimal]
    purchase_usd_by_subtype: dict[str, Decimal | None]
    reversal_tokens: dict[str, Decimal]
    reversal_usd: Decimal | None
    events_by_class: dict[str, int]
    oracle_hnt_usd: Decimal | None = None  # USD per HNT used by that day's DC purchases


@dataclass
class InvoiceData:
    database: str
    networks: tuple[str, ...]
    first_day: date | None
    last_day: date | None
    rows: list[DayRow] = field(default_factory=list)

    def for_network(self, network: str) -> list[DayRow]:
        return [r for r in self.rows if r.network == network]


def _dec_map(value: Any) -> dict:
    return {str(k): v for k, v in (value or {}).items()}


def _row(r: dict[str, Any]) -> DayRow:
    return DayRow(
        network=r["network"], day=r["day"], usage_usd=r["usage_usd"],
        usage_usd_by_subtype=_dec_map(r["usage_usd_by_subtype"]), usage_tokens=_dec_map(r["usage_tokens"]),
        emission_tokens=_dec_map(r["emission_tokens"]),
        emission_tokens_by_destination={str(k): _dec_map(v) for k, v in
                                        (r["emission_tokens_by_destination"] or {}).items()},
        emission_usd=r["emission_usd"], purchase_tokens=_dec_map(r["purchase_tokens"]),
        purchase_usd_by_subtype=_dec_map(r["purchase_usd_by_subtype"]),
        reversal_tokens=_dec_map(r["reversal_tokens"]), reversal_usd=r["reversal_usd"],
        events_by_class={str(k): int(v) for k, v in (r["events_by_class"] or {}).items()},
    )


def latest_day(client, database: str, networks: tuple[str, ...]) -> date | None:
    db = check_identifier(database)
    rows = client.query(f"SELECT max(day), count() FROM {db}.invoice_daily WHERE network IN {{n:Array(String)}}",
                        parameters={"n": list(networks)}).result_rows
    return rows[0][0] if rows and rows[0][1] else None


def load_invoice(client, database: str, networks: tuple[str, ...], days: int,
                 until: date | None = None) -> InvoiceData:
    """The `days` accounting days ending at `until` (default: the latest day with data)."""
    if days < 1:
        raise ValueError("days must be >= 1")
    db = check_identifier(database)
    last = until or latest_day(client, database, networks)
    if last is None:
        return InvoiceData(database, networks, None, None)
    first = last - timedelta(days=days - 1)
    params = {"n": list(networks), "lo": first, "hi": last}
    result = client.query(
        f"SELECT * FROM {db}.invoice_daily WHERE network IN {{n:Array(String)}} "
        "AND day BETWEEN {lo:Date} AND {hi:Date} ORDER BY network, day", parameters=params)
    rows = [_row(r) for r in result.named_results()]
    oracle = {(n, d): p for n, d, p in client.query(
        f"SELECT network, day, sum(assumeNotNull(usd)) / sum(amount) FROM {db}.flows_daily "
        "WHERE flow_class = 'purchase' AND subtype = 'hnt_burned' AND usd IS NOT NULL AND amount > 0 "
        "AND network IN {n:Array(String)} AND day BETWEEN {lo:Date} AND {hi:Date} GROUP BY network, day",
        parameters=params).result_rows}
    for r in rows:
        r.oracle_hnt_usd = oracle.get((r.network, r.day))
    return InvoiceData(database, networks, first, last, rows)
