"""The materialized daily rollup (migration 0007): refresh it on demand and inspect its state.

Why a function as well as the 30-second refreshable MV: reading is exact at every moment anyway
(flows_daily takes an unsettled day from the live FINAL aggregate), but only settled days are cheap.
Nobody has to call it for correct numbers. A writer that has just finished and knows nothing else
writes (a benchmark, a test, a one-off backfill) calls `refresh_rollups(..., grace_seconds=0)` to
have every day served from the rollup at once; anyone else (a report, a sink between batches) may
call it with the default grace to settle what the background refresh has not reached yet.

`grace_seconds`: a refresh marks a day settled up to `start - grace`. The background refresh uses
60 s, because an insert's touch is stamped before its rows become visible and a long insert must
not be settled without them. A caller whose own inserts have all returned (nothing else writing)
may pass 0; with other writers running, keep the default.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.clickhouse.migrate import check_identifier

REFRESH_VIEW = "flows_daily_refresh"
ROLLUP_TABLE = "flows_daily_rollup"
DEFAULT_GRACE_SECONDS = 60.0


@dataclass(frozen=True)
class RollupState:
    days: int          # (network, day) pairs that ever held a flow
    unsettled: int     # of which read live (changed since their rollup row was computed)

    @property
    def settled(self) -> int:
        return self.days - self.unsettled


def refresh_rollups(client, database: str, *, full: bool = False,
                    grace_seconds: float = DEFAULT_GRACE_SECONDS) -> RollupState:
    """Recompute the unsettled days (every day with `full`) into flows_daily_rollup from FINAL.

    Returns the state afterwards. Safe to run concurrently with the sink, the background refresh and
    other callers: each computation is a new row version of its day, the newest one wins, and a day
    touched after `start - grace` stays unsettled (read from FINAL) until a later computation covers it.
    """
    db = check_identifier(database)
    grace_ms = int(round(grace_seconds * 1000))
    if grace_ms < 0:
        raise ValueError("grace_seconds must be >= 0")
    client.command(f"INSERT INTO {db}.{ROLLUP_TABLE} "
                   f"SELECT * FROM {db}.flows_daily_recompute(full = {int(full)}, grace_ms = {grace_ms})")
    return rollup_state(client, db)


def rollup_state(client, database: str) -> RollupState:
    """How many days are served from the rollup and how many are read live right now."""
    db = check_identifier(database)
    days, unsettled = client.query(
        f"SELECT (SELECT uniqExact(network, day) FROM {db}.flow_days_touched), "
        f"(SELECT count() FROM {db}.flow_days_unsettled)"
    ).result_rows[0]
    return RollupState(int(days), int(unsettled))
