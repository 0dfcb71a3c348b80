"""The invoice arithmetic: period totals, the usage/emissions ratio and the three one-line answers.

Ratio basis, best first, chosen once per network for the whole period so the days compare:
- `usd`: usage USD / emission USD, both from the view (loaded prices, the DC peg);
- `usd_oracle`: as above, but emissions without a loaded price valued at the HNT price the chain
  itself used in that day's Data Credit purchases (or the nearest day's in the period);
- `tokens`: usage and emissions are the same single token (Render: RENDER burned / RENDER minted),
  so their ratio needs no price at all;
- None: not computable; the report says which price is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from pipelines.report.data import DayRow

FLAT_BAND = 0.05  # a relative change of the ratio below 5% between the halves reads as "flat"

BASIS_LABELS = {
    "usd": "USD at loaded prices",
    "usd_oracle": "USD; HNT valued at the on-chain oracle price used in DC purchases",
    "tokens": "tokens (same token burned and minted, no price needed)",
}


def add_maps(maps: list[dict[str, Decimal]]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for m in maps:
        for k, v in m.items():
            out[k] = out.get(k, Decimal(0)) + v
    return out


def sum_known(values: list[Decimal | None]) -> Decimal | None:
    """Exact sum, or None when any part is unknown (never a partial sum passed off as the total)."""
    if any(v is None for v in values):
        return None
    return sum(values, Decimal(0))


def nonzero(m: dict[str, Decimal]) -> dict[str, Decimal]:
    return {k: v for k, v in m.items() if v != 0}


@dataclass
class DayFigures:
    """A day of the invoice with the derived values the report shows."""

    row: DayRow
    emission_usd: Decimal | None = None   # view value, else oracle-valued, else None
    emission_usd_source: str | None = None  # "prices" | "oracle"
    ratio: float | None = None


@dataclass
class NetworkInvoice:
    network: str
    days: list[DayFigures]
    basis: str | None
    usage_usd: Decimal | None
    usage_usd_by_subtype: dict[str, Decimal | None]
    usage_tokens: dict[str, Decimal]
    usage_tokens_by_subtype_share: dict[str, float]
    emission_tokens: dict[str, Decimal]
    emission_tokens_by_destination: dict[str, dict[str, Decimal]]
    emission_usd: Decimal | None
    purchase_tokens: dict[str, Decimal]
    reversal_tokens: dict[str, Decimal]
    reversal_usd: Decimal | None
    ratio: float | None
    answers: dict[str, str] = field(default_factory=dict)
    missing_prices: list[str] = field(default_factory=list)


def _oracle_price(rows: list[DayRow], day: date) -> Decimal | None:
    """The HNT price of `day`'s DC purchases, else of the nearest day in the period (later wins a tie)."""
    priced = [(abs((r.day - day).days), -r.day.toordinal(), r.oracle_hnt_usd) for r in rows
              if r.oracle_hnt_usd is not None]
    return min(priced)[2] if priced else None


def _emission_usd(row: DayRow, rows: list[DayRow]) -> tuple[Decimal | None, str | None]:
    tokens = nonzero(row.emission_tokens)
    if not tokens:
        return Decimal(0), "prices"
    if row.emission_usd is not None:
        return row.emission_usd, "prices"
    if set(tokens) == {"HNT"}:
        price = _oracle_price(rows, row.day)
        if price is not None:
            return tokens["HNT"] * price, "oracle"
    return None, None


def _single_token(maps: list[dict[str, Decimal]]) -> str | None:
    symbols = set()
    for m in maps:
        symbols |= set(nonzero(m))
    return next(iter(symbols)) if len(symbols) == 1 else None


def _choose_basis(figs: list[DayFigures]) -> str | None:
    rows = [f.row for f in figs]
    if all(r.usage_usd is not None for r in rows) and all(f.emission_usd is not None for f in figs):
        sources = {f.emission_usd_source for f in figs if nonzero(f.row.emission_tokens)}
        return "usd_oracle" if "oracle" in sources else "usd"
    usage_sym = _single_token([r.usage_tokens for r in rows])
    emission_sym = _single_token([r.emission_tokens for r in rows])
    if usage_sym is not None and usage_sym == emission_sym:
        return "tokens"
    return None


def _ratio(basis: str | None, usage_usd: Decimal | None, emission_usd: Decimal | None,
           usage_tokens: dict[str, Decimal], emission_tokens: dict[str, Decimal]) -> float | None:
    if basis in ("usd", "usd_oracle"):
        if usage_usd is None or not emission_usd:
            return None
        return float(usage_usd / emission_usd)
    if basis == "tokens":
        emitted = sum(emission_tokens.values(), Decimal(0))
        return float(sum(usage_tokens.values(), Decimal(0)) / emitted) if emitted else None
    return None


def _missing_prices(figs: list[DayFigures]) -> list[str]:
    missing: set[str] = set()
    for f in figs:
        if f.row.usage_usd is None:
            missing |= set(nonzero(f.row.usage_tokens))
        if f.emission_usd is None:
            missing |= set(nonzero(f.row.emission_tokens))
    return sorted(missing)


def analyse(network: str, rows: list[DayRow]) -> NetworkInvoice:
    """Totals, ratio (per day and for the period) and the three answers for one network."""
    figs = []
    for r in rows:
        usd, source = _emission_usd(r, rows)
        figs.append(DayFigures(r, usd, source))
    basis = _choose_basis(figs) if figs else None
    for f in figs:
        f.ratio = _ratio(basis, f.row.usage_usd, f.emission_usd, f.row.usage_tokens, f.row.emission_tokens)
    usage_by_subtype: dict[str, list[Decimal | None]] = {}
    for r in rows:
        for k, v in r.usage_usd_by_subtype.items():
            usage_by_subtype.setdefault(k, []).append(v)
    inv = NetworkInvoice(
        network=network, days=figs, basis=basis,
        usage_usd=sum_known([r.usage_usd for r in rows]),
        usage_usd_by_subtype={k: sum_known(v) for k, v in usage_by_subtype.items()},
        usage_tokens=nonzero(add_maps([r.usage_tokens for r in rows])),
        usage_tokens_by_subtype_share={},
        emission_tokens=nonzero(add_maps([r.emission_tokens for r in rows])),
        emission_tokens_by_destination={},
        emission_usd=sum_known([f.emission_usd for f in figs]),
        purchase_tokens=nonzero(add_maps([r.purchase_tokens for r in rows])),
        reversal_tokens=nonzero(add_maps([r.reversal_tokens for r in rows])),
        reversal_usd=sum_known([r.reversal_usd for r in rows]),
        ratio=None,
    )
    dests: dict[str, list[dict[str, Decimal]]] = {}
    for r in rows:
        for dest, tokens in r.emission_tokens_by_destination.items():
            dests.setdefault(dest, []).append(tokens)
    inv.emission_tokens_by_destination = {d: nonzero(add_maps(t)) for d, t in dests.items()}
    inv.ratio = _ratio(basis, inv.usage_usd, inv.emission_usd, inv.usage_tokens, inv.emission_tokens)
    inv.missing_prices = _missing_prices(figs)
    inv.answers = {
        "who_pays": who_pays(inv, len(rows)),
        "what_funds_rewards": what_funds_rewards(inv),
        "ratio_trend": ratio_trend(inv),
    }
    return inv


# ---------------------------------------------------------------------------------- formatting
def fmt_amount(value: Decimal | float | None) -> str:
    """Readable, not exact: thousands separators, 2 decimals (more for small values)."""
    if value is None:
        return "n/a"
    v = Decimal(str(value)) if isinstance(value, float) else value
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 1:
        return f"{v:,.2f}"
    return f"{v:.6f}".rstrip("0").rstrip(".")


def fmt_usd(value: Decimal | None) -> str:
    return "n/a" if value is None else f"${fmt_amount(value)}"


def fmt_tokens(tokens: dict[str, Decimal]) -> str:
    items = sorted(nonzero(tokens).items(), key=lambda kv: -kv[1])
    return ", ".join(f"{fmt_amount(v)} {k}" for k, v in items) if items else "0"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio * 100:.2f}%" if ratio < 10 else f"{ratio:.1f}x"


def _shares(values: dict[str, Decimal], limit: int = 4) -> str:
    total = sum(values.values(), Decimal(0))
    if not total:
        return ""
    items = sorted(values.items(), key=lambda kv: -kv[1])
    parts = [f"{k} {float(v / total) * 100:.0f}%" for k, v in items[:limit]]
    if len(items) > limit:
        parts.append(f"{len(items) - limit} more")
    return ", ".join(parts)


# ---------------------------------------------------------------------------------- the answers
def who_pays(inv: NetworkInvoice, n_days: int) -> str:
    if not inv.usage_tokens:
        return f"No one: no usage fees were recorded in these {n_days} day(s)."
    burned = fmt_tokens(inv.usage_tokens)
    if inv.usage_usd is None:
        split = ", ".join(sorted(inv.usage_usd_by_subtype))
        return (f"Buyers of the service burned {burned} in usage fees over {n_days} day(s) ({split}); "
                f"no USD price loaded for {', '.join(inv.missing_prices) or 'it'}.")
    split = _shares({k: v for k, v in inv.usage_usd_by_subtype.items() if v is not None})
    return (f"Buyers of the service paid {fmt_usd(inv.usage_usd)} in usage fees over {n_days} day(s) "
            f"by burning {burned} ({split}).")


def what_funds_rewards(inv: NetworkInvoice) -> str:
    if not inv.emission_tokens:
        return "No new tokens were minted in this period; rewards paid out came from earlier emissions."
    minted = fmt_tokens(inv.emission_tokens)
    usd = f" ({fmt_usd(inv.emission_usd)})" if inv.emission_usd is not None else ""
    dests = _shares({d: sum(t.values(), Decimal(0)) for d, t in inv.emission_tokens_by_destination.items()})
    text = f"Newly minted tokens: {minted}{usd} to {dests}"
    if inv.reversal_tokens:
        text += f", less {fmt_tokens(inv.reversal_tokens)} burned back"
    if inv.ratio is None:
        missing = ", ".join(inv.missing_prices) or "a price"
        return text + f"; how much of it usage covers is unknown without a USD price for {missing}."
    if inv.ratio >= 1:
        return text + f"; usage fees are {fmt_ratio(inv.ratio)} of that, so buyers fully fund the rewards."
    return (text + f"; usage fees cover {fmt_ratio(inv.ratio)} of that, so issuance (dilution) funds "
            f"{(1 - inv.ratio) * 100:.1f}% of the rewards.")


def ratio_trend(inv: NetworkInvoice) -> str:
    points = [(f.row.day, f.ratio) for f in inv.days if f.ratio is not None]
    if len(points) < 2:
        return (f"Not enough days with both usage and emissions to see a trend ({len(points)} day(s) with a "
                f"ratio; the period ratio is {fmt_ratio(inv.ratio)}).")
    half = len(points) // 2
    early = sum(r for _, r in points[:half]) / half
    late = sum(r for _, r in points[-half:]) / half
    span = f"{points[0][0]}..{points[-1][0]}"
    change = (late - early) / early if early else float("inf")
    if abs(change) < FLAT_BAND:
        return f"Flat at about {fmt_ratio(late)} over {span} (first vs last {half} day(s))."
    direction = "Rising" if late > early else "Falling"
    return f"{direction}: from {fmt_ratio(early)} to {fmt_ratio(late)} over {span} (first vs last {half} day(s))."
