"""The invoice chart: per network, what buyers paid against what the network minted, day by day.

One panel per network: emissions as wide pale bars, usage fees as narrow dark bars in front of them
(same unit, so the gap between them is the subsidy), and the ratio as a line on the right axis. The
unit is USD when both sides have one, else the common token (Render: RENDER burned vs minted). A
log scale is used when the two differ by more than 100x, so the small side is still visible.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from pipelines.report.analysis import BASIS_LABELS, NetworkInvoice, fmt_ratio, fmt_tokens, nonzero

USAGE_COLOR = "#1b7837"
EMISSION_COLOR = "#d6604d"
RATIO_COLOR = "#2c3e50"


def _series(inv: NetworkInvoice) -> tuple[list, list[float | None], list[float | None], str]:
    """Days, usage values, emission values (None = unknown in this unit) and the unit."""
    days = [f.row.day for f in inv.days]
    if inv.basis == "tokens":
        symbol = next(iter(inv.emission_tokens), "")
        usage = [float(sum(nonzero(f.row.usage_tokens).values(), Decimal(0))) for f in inv.days]
        emitted = [float(sum(nonzero(f.row.emission_tokens).values(), Decimal(0))) for f in inv.days]
        return days, usage, emitted, symbol
    # USD: both sides when the basis is USD; otherwise what is priced (usage often is, via the DC peg)
    usage = [None if f.row.usage_usd is None else float(f.row.usage_usd) for f in inv.days]
    emitted = [None if f.emission_usd is None else float(f.emission_usd) for f in inv.days]
    return days, usage, emitted, "USD"


def write_chart(invoices: list[NetworkInvoice], path: str | Path, title_period: str,
                first_day: date | None = None, last_day: date | None = None) -> Path:
    """Render the PNG (Agg backend: no display needed) and return its path.

    The x axis spans the whole period (first_day..last_day) so days without data show as gaps.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    shown = [inv for inv in invoices if inv.days] or invoices
    fig, axes = plt.subplots(len(shown), 1, figsize=(11, 3.8 * len(shown) + 0.8), squeeze=False)
    fig.suptitle(f"Who holds the invoice? Usage fees vs emissions - {title_period}", fontsize=13, weight="bold")
    for ax, inv in zip(axes[:, 0], shown, strict=True):
        _panel(ax, inv, mdates, first_day, last_day)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png", dpi=110)
    plt.close(fig)
    return out


def _panel(ax, inv: NetworkInvoice, mdates, first_day: date | None, last_day: date | None) -> None:
    if inv.ratio is not None:
        headline = f"usage fees cover {fmt_ratio(inv.ratio)} of emissions ({BASIS_LABELS[inv.basis]})"
    else:
        missing = ", ".join(inv.missing_prices) or "a common unit"
        headline = f"usage / emissions unknown: no USD price for {missing}"
    ax.set_title(f"{inv.network.capitalize()}: {headline}", fontsize=10, loc="left")
    if not inv.days:
        ax.text(0.5, 0.5, "no events in this period", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    days, usage, emitted, unit = _series(inv)
    known = [v for v in usage + emitted if v]
    ax.bar(days, [v or 0 for v in emitted], width=0.8, color=EMISSION_COLOR, alpha=0.45,
           label=f"emissions ({unit})")
    ax.bar(days, [v or 0 for v in usage], width=0.4, color=USAGE_COLOR, label=f"usage fees ({unit})")
    if known and min(known) > 0 and max(known) / min(known) > 100:
        ax.set_yscale("log")
    for f, value in zip(inv.days, emitted, strict=True):
        if value is None and nonzero(f.row.emission_tokens):  # minted but unpriced: say it in tokens
            ax.annotate(f"{fmt_tokens(f.row.emission_tokens)}\nminted (unpriced)", (f.row.day, 0.5),
                        xycoords=("data", "axes fraction"), ha="center", fontsize=8, color=EMISSION_COLOR)
    ax.set_ylabel(unit)
    lo = first_day or min(days)
    hi = last_day or max(days)
    ax.set_xlim(mdates.date2num(lo) - 0.6, mdates.date2num(hi) + 0.6)
    step = max(1, ((hi - lo).days + 1) // 10)
    ax.xaxis.set_major_locator(mdates.DayLocator(interval=step))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d"))
    ax.grid(axis="y", alpha=0.3)
    ratio_days = [(f.row.day, f.ratio * 100) for f in inv.days if f.ratio is not None]
    handles, labels = ax.get_legend_handles_labels()
    if ratio_days:
        twin = ax.twinx()
        twin.plot([d for d, _ in ratio_days], [r for _, r in ratio_days], color=RATIO_COLOR, marker="o",
                  linewidth=1.8, label="usage / emissions (%)")
        twin.set_ylabel("usage / emissions (%)")
        twin.set_ylim(0, max(r for _, r in ratio_days) * 1.25)
        h2, l2 = twin.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8,
              frameon=False)
