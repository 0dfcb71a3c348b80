"""Flow events -> ClickHouse columns, validated a column at a time.

Why: the flows topic carries the volume, and validating 34 fields per message with Python function
calls costs more than the ClickHouse insert itself. Here each field is pulled out of all messages
with one comprehension and checked with one `all(...)`, which runs several times faster. If any
check fails, the group falls back to the exact per-message `rows.flow_row` to find the offenders
and their reasons, so both paths accept and reject the same messages (a test holds them equal).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from pipelines.clickhouse.tables import COMMITMENT_RANK, FLOW_COLUMNS
from pipelines.sink.rows import (
    EVENT_COMMITMENTS,
    FLOW_CLASSES,
    MAX_BLOCK_TIME,
    MAX_SLOT,
    SUPPORTED_SCHEMA_VERSIONS,
    U64_MAX,
    U128_MAX,
    Rejected,
    _day_cache,
    day_number,
    flow_row,
)

_OPT_STR = ("program_id", "program", "instruction", "outer_program", "outer_instruction", "parent_instruction")
_OPT_STR2 = ("payer_owner", "payer_account", "recipient_owner", "recipient_account", "sub_dao")


class _Slow(Exception):
    """Some value needs the per-message path."""


def _req_str(ds: list[dict], key: str) -> list:
    col = [d.get(key) for d in ds]
    if not all(type(v) is str and v for v in col):
        raise _Slow
    return col


def _opt_str(ds: list[dict], key: str) -> list:
    col = [d.get(key) for d in ds]
    if not all(v is None or type(v) is str for v in col):
        raise _Slow
    return ["" if v is None else v for v in col]


def _ints(ds: list[dict], key: str, hi: int, optional: bool = False) -> list:
    col = [d.get(key) for d in ds]
    if optional:
        ok = all(v is None or (type(v) is int and 0 <= v <= hi) for v in col)
    else:
        ok = all(type(v) is int and 0 <= v <= hi for v in col)
    if not ok:
        raise _Slow
    return col


def _decimals(ds: list[dict], key: str) -> list:
    col = [d.get(key) for d in ds]
    for v in col:
        if v is None:
            continue
        if type(v) is not str:
            raise _Slow
        try:
            if not Decimal(v).is_finite():
                raise _Slow
        except InvalidOperation:
            raise _Slow from None
    return col


def _fast(ds: list[dict]) -> list[list]:
    sig = _req_str(ds, "signature")
    path = _req_str(ds, "ix_path")
    leg = _ints(ds, "leg", 65535, optional=True)
    expected = [f"{s}:{p}" if g is None else f"{s}:{p}:{g}" for s, p, g in zip(sig, path, leg, strict=True)]
    event_id = [d.get("event_id") or e for d, e in zip(ds, expected, strict=True)]
    if event_id != expected:
        raise _Slow
    flow_class = _req_str(ds, "flow_class")
    if not all(c in FLOW_CLASSES for c in flow_class):
        raise _Slow
    days_text = [d.get("day") for d in ds]
    try:
        day = [_day_cache[t] for t in days_text]
    except (KeyError, TypeError):
        try:
            day = [day_number(t) for t in days_text]     # fills the cache, or leaves it to the exact path
        except Rejected:
            raise _Slow from None
    slot = _ints(ds, "slot", MAX_SLOT)
    block_time = _ints(ds, "block_time", MAX_BLOCK_TIME)
    commitment = [d.get("commitment") or "confirmed" for d in ds]
    if not all(type(c) is str and c in EVENT_COMMITMENTS for c in commitment):
        raise _Slow
    schema = [d.get("schema_version", "v1") for d in ds]
    if not all(type(v) is str and v in SUPPORTED_SCHEMA_VERSIONS for v in schema):
        raise _Slow
    rank = COMMITMENT_RANK
    cols = {
        "event_id": event_id, "signature": sig, "ix_path": path, "leg": leg,
        "network": _req_str(ds, "network"), "flow_class": flow_class, "subtype": _req_str(ds, "subtype"),
        "day": day, "block_time": [t * 1000 for t in block_time], "slot": slot,
        "epoch": _ints(ds, "epoch", U64_MAX, optional=True),
        **{k: _opt_str(ds, k) for k in _OPT_STR},
        "mint": _req_str(ds, "mint"), "symbol": _opt_str(ds, "symbol"), "decimals": _ints(ds, "decimals", 255),
        "amount_raw": _ints(ds, "amount_raw", U128_MAX), "usd": _decimals(ds, "usd"),
        "usd_price": _decimals(ds, "usd_price"), **{k: _opt_str(ds, k) for k in _OPT_STR2},
        "commitment": commitment, "reason": _opt_str(ds, "reason"), "rule_version": _opt_str(ds, "rule_version"),
        "schema_version": schema, "version": [s * 4 + rank[c] for s, c in zip(slot, commitment, strict=True)],
        "is_deleted": [0] * len(ds),
    }
    return [cols[name] for name, _ in FLOW_COLUMNS]


def flow_columns(ds: list[dict]) -> tuple[list[list], list[int], list[tuple[int, Rejected]]]:
    """Columns (FLOW_COLUMNS order) of the valid events, the indices of those events in `ds`, and
    (index, Rejected) for the invalid ones."""
    if not ds:
        return [[] for _ in FLOW_COLUMNS], [], []
    try:
        return _fast(ds), list(range(len(ds))), []
    except _Slow:
        pass
    rows, kept, rejected = [], [], []
    for i, d in enumerate(ds):
        try:
            rows.append(flow_row(d)[1])
            kept.append(i)
        except Rejected as rej:
            rejected.append((i, rej))
        except Exception as exc:  # noqa: BLE001 - an odd value must not fail the batch
            rejected.append((i, Rejected("parse_error", f"{type(exc).__name__}: {exc}")))
    cols = [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in FLOW_COLUMNS]
    return cols, kept, rejected
