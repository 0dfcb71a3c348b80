"""A one-line backfill progress bar with rate and ETA, drawn on stderr only when it is a terminal.

WHY hand-rolled: one line, no dependency; the JSON logs stay machine-readable because the bar is
only drawn on a TTY (and is cleared before the process exits).
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

from indexer.sources.backfill import BackfillProgress


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0 or seconds > 99 * 3600:
        return "--:--:--"
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def render(progress: BackfillProgress, now: float, width: int = 30) -> str:
    frac = progress.fraction()
    elapsed = max(1e-9, now - progress.started)
    rate = progress.txs / elapsed
    eta = None
    if frac is not None and 0 < frac < 1:
        eta = elapsed * (1 - frac) / frac
    elif frac == 1:
        eta = 0.0
    if frac is None:
        bar, pct = "?" * width, "  ?  "
    else:
        filled = int(round(frac * width))
        bar, pct = "#" * filled + "-" * (width - filled), f"{frac * 100:5.1f}%"
    return (f"backfill [{bar}] {pct} | {progress.txs:,} tx | {rate:,.0f} tx/s | "
            f"slot {progress.low_slot if progress.low_slot is not None else '-'} | ETA {format_eta(eta)}")


async def draw(progress: BackfillProgress, stop: asyncio.Event, stream: TextIO | None = None,
               interval: float = 0.5) -> None:
    """Redraw until the backfill is done or `stop` is set."""
    out = stream or sys.stderr
    try:
        while not stop.is_set() and not progress.done:
            out.write("\r" + render(progress, time.monotonic()) + "\x1b[K")
            out.flush()
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
        out.write("\r" + render(progress, time.monotonic()) + "\x1b[K\n")
        out.flush()
    except (OSError, ValueError):
        return  # the terminal went away
