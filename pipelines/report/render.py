"""The invoice as text: a terminal table, CSV (one row per network and day) or one JSON document.

Exact values (Decimal) are written as plain decimal strings in CSV and JSON so nothing is lost to
floats; the table rounds for reading.
"""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from typing import Any

from pipelines.report.analysis import (
    BASIS_LABELS,
    NetworkInvoice,
    fmt_amount,
    fmt_ratio,
    fmt_tokens,
    fmt_usd,
    nonzero,
)
from pipelines.report.data import InvoiceData


def exact(value: Decimal | None) -> str | None:
    """Plain decimal string without exponent or trailing zeros ('0', '1.5', '20934199909')."""
    if value is None:
        return None
    if value == 0:
        return "0"
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _exact_map(m: dict[str, Decimal | None]) -> dict[str, str | None]:
    return {k: exact(v) for k, v in sorted(m.items())}


def period_text(data: InvoiceData) -> str:
    if data.first_day is None:
        return "no data"
    n = (data.last_day - data.first_day).days + 1
    with_data = len({r.day for r in data.rows})
    return f"{data.first_day} .. {data.last_day} ({n} day{'s' if n != 1 else ''}, {with_data} with data)"


# ---------------------------------------------------------------------------------- table
def render_table(data: InvoiceData, invoices: list[NetworkInvoice]) -> str:
    out = io.StringIO()
    out.write(f"depinflow invoice report - {period_text(data)}, accounting days (UTC; Helium emissions "
              "on their epoch's day)\n")
    for inv in invoices:
        out.write("\n")
        _table_network(out, inv)
    return out.getvalue()


def _table_network(out: io.StringIO, inv: NetworkInvoice) -> None:
    out.write(f"== {inv.network.upper()} ==\n")
    if not inv.days:
        out.write("  no events in this period\n")
        return
    header = ["day", "usage", "usage USD", "emissions", "emissions USD", "purchases", "reversals", "ratio"]
    rows = [[str(f.row.day), fmt_tokens(f.row.usage_tokens), fmt_usd(f.row.usage_usd),
             fmt_tokens(f.row.emission_tokens),
             fmt_usd(f.emission_usd) + ("*" if f.emission_usd_source == "oracle" else ""),
             fmt_tokens(f.row.purchase_tokens), fmt_tokens(f.row.reversal_tokens), fmt_ratio(f.ratio)]
            for f in inv.days]
    rows.append(["total", fmt_tokens(inv.usage_tokens), fmt_usd(inv.usage_usd), fmt_tokens(inv.emission_tokens),
                 fmt_usd(inv.emission_usd), fmt_tokens(inv.purchase_tokens), fmt_tokens(inv.reversal_tokens),
                 fmt_ratio(inv.ratio)])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for k, r in enumerate([header, *rows]):
        if k == len(rows):  # before the total line
            out.write("  " + "  ".join("-" * w for w in widths) + "\n")
        cells = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        out.write("  " + "  ".join(cells) + "\n")
    if inv.usage_usd_by_subtype:
        parts = ", ".join(f"{k} {fmt_usd(v)}" for k, v in sorted(inv.usage_usd_by_subtype.items(),
                                                                    key=lambda kv: -(kv[1] or 0)))
        out.write(f"  usage by subtype: {parts}\n")
    if inv.emission_tokens_by_destination:
        parts = ", ".join(f"{d} {fmt_tokens(t)}" for d, t in sorted(inv.emission_tokens_by_destination.items()))
        out.write(f"  emissions by destination: {parts}\n")
    out.write(f"  ratio = usage / emissions, in {BASIS_LABELS.get(inv.basis, 'n/a (no common unit)')}\n")
    if any(f.emission_usd_source == "oracle" for f in inv.days):
        out.write("  * HNT valued at the oracle price the chain used in Data Credit purchases (no price loaded)\n")
    if inv.missing_prices:
        out.write(f"  no USD price loaded for: {', '.join(inv.missing_prices)} "
                  f"(INSERT INTO prices (token, day, usd) ...)\n")
    out.write(f"  Who pays? {inv.answers['who_pays']}\n")
    out.write(f"  What funds the rewards? {inv.answers['what_funds_rewards']}\n")
    out.write(f"  How is the ratio trending? {inv.answers['ratio_trend']}\n")


# ---------------------------------------------------------------------------------- csv
def csv_rows(invoices: list[NetworkInvoice]) -> tuple[list[str], list[dict[str, Any]]]:
    rows: list[dict[str, Any]] = []
    for inv in invoices:
        for f in inv.days:
            r = f.row
            row: dict[str, Any] = {"network": r.network, "day": str(r.day), "usage_usd": exact(r.usage_usd)}
            row |= {f"usage_usd_{k}": exact(v) for k, v in r.usage_usd_by_subtype.items()}
            row |= {f"usage_{k}": exact(v) for k, v in nonzero(r.usage_tokens).items()}
            row |= {f"emission_{k}": exact(v) for k, v in nonzero(r.emission_tokens).items()}
            row |= {"emission_usd": exact(f.emission_usd), "emission_usd_source": f.emission_usd_source or ""}
            row |= {f"purchase_{k}": exact(v) for k, v in nonzero(r.purchase_tokens).items()}
            row |= {f"reversal_{k}": exact(v) for k, v in nonzero(r.reversal_tokens).items()}
            row |= {"reversal_usd": exact(r.reversal_usd),
                    "ratio": "" if f.ratio is None else repr(f.ratio), "ratio_basis": inv.basis or ""}
            rows.append(row)
    fixed = ["network", "day", "usage_usd"]
    seen: list[str] = []
    for row in rows:
        seen += [k for k in row if k not in fixed and k not in seen]
    order = {"usage_usd_": 0, "usage_": 1, "emission_": 2, "emission_usd": 3, "emission_usd_source": 3,
             "purchase_": 4, "reversal_": 5, "reversal_usd": 6, "ratio": 7, "ratio_basis": 7}

    def rank(col: str) -> tuple[int, str]:
        if col in order:
            return order[col], col
        return next(v for p, v in order.items() if col.startswith(p)), col

    return fixed + sorted(seen, key=rank), rows


def render_csv(invoices: list[NetworkInvoice]) -> str:
    columns, rows = csv_rows(invoices)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return out.getvalue()


# ---------------------------------------------------------------------------------- json
def invoice_json(data: InvoiceData, invoices: list[NetworkInvoice]) -> dict[str, Any]:
    networks = {}
    for inv in invoices:
        networks[inv.network] = {
            "days": [{
                "day": str(f.row.day),
                "usage_usd": exact(f.row.usage_usd),
                "usage_usd_by_subtype": _exact_map(f.row.usage_usd_by_subtype),
                "usage_tokens": _exact_map(nonzero(f.row.usage_tokens)),
                "emission_tokens": _exact_map(nonzero(f.row.emission_tokens)),
                "emission_tokens_by_destination": {d: _exact_map(nonzero(t)) for d, t in
                                                   sorted(f.row.emission_tokens_by_destination.items())},
                "emission_usd": exact(f.emission_usd),
                "emission_usd_source": f.emission_usd_source,
                "purchase_tokens": _exact_map(nonzero(f.row.purchase_tokens)),
                "purchase_usd_by_subtype": _exact_map(f.row.purchase_usd_by_subtype),
                "reversal_tokens": _exact_map(nonzero(f.row.reversal_tokens)),
                "reversal_usd": exact(f.row.reversal_usd),
                "oracle_hnt_usd": exact(f.row.oracle_hnt_usd),
                "ratio": f.ratio,
                "events_by_class": dict(sorted(f.row.events_by_class.items())),
            } for f in inv.days],
            "totals": {
                "usage_usd": exact(inv.usage_usd),
                "usage_usd_by_subtype": _exact_map(inv.usage_usd_by_subtype),
                "usage_tokens": _exact_map(inv.usage_tokens),
                "emission_tokens": _exact_map(inv.emission_tokens),
                "emission_tokens_by_destination": {d: _exact_map(t) for d, t in
                                                   sorted(inv.emission_tokens_by_destination.items())},
                "emission_usd": exact(inv.emission_usd),
                "purchase_tokens": _exact_map(inv.purchase_tokens),
                "reversal_tokens": _exact_map(inv.reversal_tokens),
                "reversal_usd": exact(inv.reversal_usd),
                "ratio": inv.ratio,
                "ratio_basis": inv.basis,
                "missing_prices": inv.missing_prices,
            },
            "answers": inv.answers,
        }
    return {
        "database": data.database,
        "period": {"first_day": str(data.first_day) if data.first_day else None,
                   "last_day": str(data.last_day) if data.last_day else None},
        "networks": networks,
    }


def render_json(data: InvoiceData, invoices: list[NetworkInvoice]) -> str:
    return json.dumps(invoice_json(data, invoices), indent=2) + "\n"


__all__ = ["exact", "fmt_amount", "render_csv", "render_json", "render_table"]
