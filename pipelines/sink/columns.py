"""Flow events -> ClickHouse columns, validated a column at a time.

Why: the flows topic carries the volume, and validating 34 fields per message with Python function
calls costs more than the ClickHouse insert itself. Here each field is pulled out of all messages
with one C-level `map(itemgetter(...))` and checked with set/min/max over the column, which runs
several times faster. Only exactly the values the FlowEvent contract produces pass (every key
present, exact types, `event_id` given and equal to the rule). If any
check fails, the group falls back to the exact per-message `rows.flow_row` to find the offenders
and their reasons, so both paths accept and reject the same messages (a test holds them equal).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from operator import add, itemgetter

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


_STR, _INT, _NONE = frozenset({str}), frozenset({int}), type(None)


_KEYS = ("signature", "ix_path", "leg", "event_id", "flow_class", "day", "slot", "block_time", "commitment",
         "schema_version", "network", "subtype", "epoch", *_OPT_STR, "mint", "symbol", "decimals", "amount_raw",
         "usd", "usd_price", *_OPT_STR2, "reason", "rule_version")
_GET_ALL = itemgetter(*_KEYS)


def _req_str(col: list) -> list:
    if set(map(type, col)) != _STR or "" in col:
        raise _Slow
    return col


def _opt_str(col: list) -> list:
    types = set(map(type, col))
    if types == _STR:
        return col
    if types <= {str, _NONE}:
        return ["" if v is None else v for v in col]
    raise _Slow


def _ints(col: list, hi: int, optional: bool = False) -> list:
    types = set(map(type, col))
    values = col
    if types != _INT:
        if not optional or not types <= {int, _NONE}:
            raise _Slow
        values = [v for v in col if v is not None]
    if values and (min(values) < 0 or max(values) > hi):
        raise _Slow
    return col


def _decimals(col: list) -> list:
    for v in set(col):
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
    # one C-level pass per event (cache friendly: 50k dicts do not fit in cache, 34 passes over them
    # would mostly wait on memory), then a C-level transpose into columns
    try:
        c = dict(zip(_KEYS, map(list, zip(*map(_GET_ALL, ds), strict=True)), strict=True))
    except KeyError:
        raise _Slow from None        # a missing key: the exact path applies the defaults
    sig, path = _req_str(c["signature"]), _req_str(c["ix_path"])
    leg = _ints(c["leg"], 65535, optional=True)
    expected = [f"{s}:{p}" if g is None else f"{s}:{p}:{g}" for s, p, g in zip(sig, path, leg, strict=True)]
    if c["event_id"] != expected:
        raise _Slow
    if not set(c["flow_class"]) <= FLOW_CLASSES:
        raise _Slow
    try:
        day = list(map(_day_cache.__getitem__, c["day"]))
    except (KeyError, TypeError):
        try:
            day = [day_number(t) for t in c["day"]]     # fills the cache, or leaves it to the exact path
        except Rejected:
            raise _Slow from None
    slot = _ints(c["slot"], MAX_SLOT)
    block_time = _ints(c["block_time"], MAX_BLOCK_TIME)
    commitment = c["commitment"]
    if not set(commitment) <= EVENT_COMMITMENTS or not set(c["schema_version"]) <= SUPPORTED_SCHEMA_VERSIONS:
        raise _Slow
    cols = {
        "event_id": expected, "signature": sig, "ix_path": path, "leg": leg,
        "network": _req_str(c["network"]), "flow_class": c["flow_class"], "subtype": _req_str(c["subtype"]),
        "day": day, "block_time": list(map((1000).__mul__, block_time)), "slot": slot,
        "epoch": _ints(c["epoch"], U64_MAX, optional=True),
        **{k: _opt_str(c[k]) for k in _OPT_STR},
        "mint": _req_str(c["mint"]), "symbol": _opt_str(c["symbol"]), "decimals": _ints(c["decimals"], 255),
        "amount_raw": _ints(c["amount_raw"], U128_MAX), "usd": _decimals(c["usd"]),
        "usd_price": _decimals(c["usd_price"]), **{k: _opt_str(c[k]) for k in _OPT_STR2},
        "commitment": commitment, "reason": _opt_str(c["reason"]), "rule_version": _opt_str(c["rule_version"]),
        "schema_version": c["schema_version"],
        "version": list(map(add, map((4).__mul__, slot), map(COMMITMENT_RANK.__getitem__, commitment))),
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
    except (_Slow, TypeError):   # TypeError: an unhashable value (list/object) met a set check
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
