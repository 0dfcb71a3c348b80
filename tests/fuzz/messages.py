"""Kafka messages for the sink fuzzing: real listener output as the base, damaged every way a topic
can carry bad data (random bytes, tombstones, wrong JSON types, huge or negative integers, missing
fields, odd headers). The expected fate of each message is computed with the sink's own parser."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import orjson

from indexer.networks.events import make_event_id
from pipelines.clickhouse.tables import TableSpec
from pipelines.sink.rows import (
    KIND_DEADLETTER,
    KIND_FLOW,
    KIND_INSTRUCTION,
    KIND_STATUS,
    Rejected,
    Source,
    parse,
)
from tests.fuzz.corpus import (
    SPECIAL_VALUES,
    Chooser,
    json_paths,
    listener_messages,
    mutate_bytes,
    mutate_json,
)
from tests.fuzz.corpus import sim_results as _sim_results

KINDS = (KIND_FLOW, KIND_INSTRUCTION, KIND_DEADLETTER, KIND_STATUS)
REASON_RE = re.compile(r"[a-z][a-z0-9_]*")
NUMERIC_FIELDS = ("slot", "block_time", "amount_raw", "decimals", "leg", "epoch")
HUGE = (2**64, 2**64 - 1, 2**128, 2**128 - 1, 2**200, -1, -(2**63), 10**40)


@dataclass(slots=True)
class FuzzMessage:
    kind: str
    value: bytes | None
    headers: list[tuple[str, bytes]]
    key: bytes


@cache
def base_records() -> dict[str, tuple[dict, ...]]:
    """Real records per kind: what the listener publishes for the simulator's transactions (plus
    one status per transaction), moved to fuzz signatures (FUZZ_PREFIX) so a message built from them can
    never overwrite or retract a real event of the same test."""
    out: dict[str, list[dict]] = {k: [] for k in KINDS}
    kind_of = {"flows": KIND_FLOW, "instructions": KIND_INSTRUCTION, "deadletter": KIND_DEADLETTER}
    for raw in _sim_results("json"):
        doc = orjson.loads(raw)
        sig = doc["transaction"]["signatures"][0]
        ids = []
        for m in listener_messages(doc, sig, doc["slot"], doc["blockTime"]):
            kind = kind_of[m.topic.split(".")[1]]
            rec = fuzz_signature(orjson.loads(m.value), kind)
            out[kind].append(rec)
            ids.append(rec["event_id"])
        out[KIND_STATUS].append({"signature": FUZZ_PREFIX + sig, "slot": doc["slot"], "status": "finalized",
                                 "event_ids": ids, "block_time": doc["blockTime"], "schema_version": "v1"})
    # the simulator's transactions decode cleanly: add upstream dead letters of every stage by hand
    for i, stage in enumerate(("fetch", "parse", "decode", "classify")):
        out[KIND_DEADLETTER].append({
            "event_id": f"{FUZZ_PREFIX}{i}DeadLetter:{i}:{stage}", "network": "helium",
            "signature": f"{FUZZ_PREFIX}{i}DeadLetter",
            "slot": 1000 + i, "block_time": 1774656000, "ix_path": str(i), "program_id": "", "program": "",
            "stage": stage, "reason": "short_data", "detail": "x", "raw_hex": "00ff", "tx_error": None,
            "commitment": "confirmed", "schema_version": "v1"})
    return {k: tuple(v) for k, v in out.items()}


FUZZ_PREFIX = "0fz"   # "0" is not in the base58 alphabet: no real signature can start like this


def fuzz_signature(rec: dict, kind: str) -> dict:
    """The same record under a signature no real transaction can have (event_id rebuilt to match)."""
    sig = FUZZ_PREFIX + rec["signature"]
    rec["signature"] = sig
    if kind == KIND_DEADLETTER:
        rec["event_id"] = f"{sig}:{rec['ix_path']}:{rec['stage']}"
    else:
        rec["event_id"] = make_event_id(sig, rec["ix_path"], rec.get("leg"))
    return rec


def _dumps(value) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:             # integers beyond 64 bits: what another producer's JSON could hold
        import json

        return json.dumps(value, ensure_ascii=False).encode()


def fuzz_message(ch: Chooser) -> FuzzMessage:
    """One damaged message for a random topic."""
    kind = ch.pick(KINDS)
    base = dict(ch.pick(base_records()[kind]))
    how = ch.pick(("mutate", "mutate", "mutate", "huge", "missing", "bytes", "json", "tombstone",
                   "mutated-bytes", "valid"))
    value: bytes | None
    if how == "mutate":
        value = _dumps(mutate_json(base, ch, paths=json_paths(base, limit_list=2)))
    elif how == "huge":
        present = [f for f in NUMERIC_FIELDS if f in base] or ["slot"]
        base[ch.pick(present)] = ch.pick(HUGE)
        value = _dumps(base)
    elif how == "missing":
        del base[ch.pick(sorted(base))]
        value = _dumps(base)
    elif how == "bytes":
        value = ch.blob(0, 300)
    elif how == "json":
        value = _dumps(ch.pick(SPECIAL_VALUES))
    elif how == "tombstone":
        value = None
    elif how == "mutated-bytes":
        value = mutate_bytes(_dumps(base), ch)
    else:
        value = _dumps(base)
    headers = [("schema_version", b"v1"), ("kind", kind.encode())]
    if ch.int(0, 4) == 0:
        headers = [(ch.pick(("network", "kind", "x", "")), ch.blob(0, 12)) for _ in range(ch.int(0, 3))]
    key = base.get("signature", "").encode() if isinstance(base.get("signature"), str) else ch.blob(0, 8)
    return FuzzMessage(kind, value, headers, key)


def expected_fate(msg: FuzzMessage, topic: str = "t", partition: int = 0, offset: int = 0):
    """(spec, row) when the sink turns the message into a row, else the Rejected it raises.

    Anything else escaping the parser is a bug: the sink would dead-letter it as a generic
    parse_error, but the reason would not say what was wrong."""
    try:
        spec, row = parse(msg.kind, Source(topic, partition, offset, 1774656000000, msg.key, msg.value,
                                           msg.headers))
    except Rejected as rej:
        assert REASON_RE.fullmatch(rej.reason), rej.reason
        return rej
    assert fits(spec, row), (spec.name, row)
    return spec, row


# ------------------------------------------------------------------------------ column types

_INT_RANGES = {"UInt8": 2**8, "UInt16": 2**16, "UInt32": 2**32, "UInt64": 2**64, "UInt128": 2**128}


def fits_type(t: str, v) -> bool:
    """Does a Python value fit the ClickHouse column type the sink declares for it?
    (Decimal ranges excepted: rows.py leaves those to the insert, whose failures are isolated.)"""
    if t.startswith("Nullable("):
        return v is None or fits_type(t[9:-1], v)
    if t.startswith("LowCardinality(") or t == "String":
        return type(v) is str
    if t in _INT_RANGES:
        return type(v) is int and 0 <= v < _INT_RANGES[t]
    if t == "Date":
        return type(v) is int and 0 <= v <= 65535
    if t.startswith("DateTime64"):
        return type(v) is int and 0 <= v < 65536 * 86400 * 1000
    if t.startswith("Decimal"):
        return type(v) is str
    if t == "Array(String)":
        return type(v) is list and all(type(x) is str for x in v)
    raise AssertionError(f"unknown column type {t}")


def fits(spec: TableSpec, row: tuple) -> bool:
    return len(row) == len(spec.columns) and all(fits_type(t, v) for (_, t), v in zip(spec.columns, row, strict=True))
