"""Kafka message -> ClickHouse row, for the four topics.

Why strict here: a message that cannot become a correct row must become a dead letter *with the
reason* instead of failing a whole batch insert or, worse, landing wrong. Validation is by hand (not
jsonschema) because it runs for every message on the hot path; it checks what ClickHouse needs
(types, ranges, the event_id rule, known enums) and leaves rarer range errors (e.g. a USD value too
large for Decimal(38, 12)) to the insert, whose failures are isolated per message by the writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import orjson

from indexer.networks.events import SCHEMA_VERSION, FlowClass, make_event_id
from pipelines.clickhouse.tables import (
    COMMITMENT_STATUS,
    DEAD_LETTERS,
    INSTRUCTIONS,
    TableSpec,
    flow_table,
    row_version,
)
from pipelines.kafka.messages import header_map

U64_MAX = 2**64 - 1
MAX_SLOT = (U64_MAX - 3) // 4      # row version = slot * 4 + rank must fit the UInt64 version column
MAX_BLOCK_TIME = 65536 * 86400 - 1  # last second of 2149-06-06: the day column is a ClickHouse Date
U128_MAX = 2**128 - 1
MAX_DATE_DAYS = 65535              # ClickHouse Date ends at 2149-06-06
MAX_RAW_BYTES = 1 << 20            # raw bytes kept in a sink dead letter (hex doubles it)
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
FLOW_CLASSES = frozenset(c.value for c in FlowClass)
EVENT_COMMITMENTS = frozenset({"confirmed", "finalized"})
STATUSES = frozenset({"finalized", "retracted"})
SUPPORTED_SCHEMA_VERSIONS = frozenset({SCHEMA_VERSION})

KIND_FLOW, KIND_INSTRUCTION, KIND_DEADLETTER, KIND_STATUS = "flow", "instruction", "deadletter", "status"


class Rejected(Exception):
    """The message cannot become a row; `reason` is short and stable (metrics label), `detail` free."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class Source:
    """Where a row came from: enough to dead-letter it (with its bytes) if its insert fails."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    raw_headers: list[tuple[str, bytes]] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """Decoded lazily: only instructions, upstream and sink dead letters read them."""
        return header_map(self.raw_headers)

    @property
    def kafka_id(self) -> str:
        return f"kafka:{self.topic}:{self.partition}:{self.offset}"


# ---------------------------------------------------------------- field helpers

_day_cache: dict[str, int] = {}


def _req_str(d: dict, key: str) -> str:
    v = d.get(key)
    if type(v) is not str or not v:
        raise Rejected("invalid_field", f"{key} must be a non-empty string, got {v!r:.80}")
    return v


def _opt_str(d: dict, key: str) -> str:
    v = d.get(key)
    if v is None:
        return ""
    if type(v) is not str:
        raise Rejected("invalid_field", f"{key} must be a string, got {v!r:.80}")
    return v


def _req_int(d: dict, key: str, hi: int = U64_MAX) -> int:
    v = d.get(key)
    if type(v) is not int or v < 0 or v > hi:
        raise Rejected("invalid_field", f"{key} must be an integer in [0, {hi}], got {v!r:.80}")
    return v


def _opt_int(d: dict, key: str, hi: int = U64_MAX) -> int | None:
    return None if d.get(key) is None else _req_int(d, key, hi)


def _opt_decimal(d: dict, key: str) -> str | None:
    """A decimal string (kept as text: clickhouse-connect converts it exactly) or None."""
    v = d.get(key)
    if v is None:
        return None
    if type(v) is int:
        return str(v)
    if type(v) is not str:
        raise Rejected("invalid_field", f"{key} must be a decimal string or null, got {v!r:.80}")
    try:
        if not Decimal(v).is_finite():
            raise InvalidOperation
    except InvalidOperation:
        raise Rejected("invalid_field", f"{key} is not a decimal number: {v!r:.80}") from None
    return v


def day_number(text: Any) -> int:
    """'YYYY-MM-DD' -> days since 1970-01-01 (what ClickHouse Date stores), cached: few distinct days."""
    v = _day_cache.get(text) if type(text) is str else None
    if v is None:
        try:
            if type(text) is not str or len(text) != 10:
                raise ValueError
            v = date.fromisoformat(text).toordinal() - _EPOCH_ORDINAL
        except ValueError:
            raise Rejected("invalid_field", f"day must be YYYY-MM-DD, got {text!r:.40}") from None
        if not 0 <= v <= MAX_DATE_DAYS:
            raise Rejected("invalid_field", f"day {text} outside the ClickHouse Date range")
        if len(_day_cache) < 100_000:
            _day_cache[text] = v
    return v


def _schema_version(d: dict) -> str:
    v = d.get("schema_version", SCHEMA_VERSION)
    if type(v) is not str or v not in SUPPORTED_SCHEMA_VERSIONS:   # type first: a list is unhashable
        raise Rejected("unsupported_schema_version", f"{v!r:.40}")
    return v


def _json_text(v: Any) -> str:
    if v is None:
        return ""
    if type(v) is str:
        return v
    return orjson.dumps(v).decode()


def _commitment(d: dict) -> str:
    c = d.get("commitment") or "confirmed"
    if type(c) is not str or c not in EVENT_COMMITMENTS:
        raise Rejected("invalid_field", f"commitment must be confirmed|finalized, got {c!r:.40}")
    return c


def decode_value(value: bytes | None) -> dict:
    if value is None:
        raise Rejected("empty_value", "message has no value (tombstone)")
    try:
        d = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise Rejected("invalid_json", str(exc)) from None
    if type(d) is not dict:
        raise Rejected("not_an_object", f"top-level JSON is {type(d).__name__}")
    return d


# ---------------------------------------------------------------- per-topic rows

def flow_row(d: dict) -> tuple[TableSpec, tuple]:
    """FlowEvent.to_dict() -> row of usage_fees / emissions / other_flows (FLOW_COLUMNS order)."""
    sig = _req_str(d, "signature")
    path = _req_str(d, "ix_path")
    leg = _opt_int(d, "leg", 65535)
    expected = make_event_id(sig, path, leg)
    event_id = d.get("event_id") or expected
    if event_id != expected:
        raise Rejected("event_id_mismatch", f"{event_id!r:.120} != {expected!r:.120}")
    flow_class = _req_str(d, "flow_class")
    if flow_class not in FLOW_CLASSES:
        raise Rejected("unknown_flow_class", flow_class[:40])
    slot = _req_int(d, "slot", MAX_SLOT)
    commitment = _commitment(d)
    row = (
        event_id, sig, path, leg, _req_str(d, "network"), flow_class, _req_str(d, "subtype"),
        day_number(d.get("day")), _req_int(d, "block_time", MAX_BLOCK_TIME) * 1000, slot, _opt_int(d, "epoch"),
        _opt_str(d, "program_id"), _opt_str(d, "program"), _opt_str(d, "instruction"),
        _opt_str(d, "outer_program"), _opt_str(d, "outer_instruction"), _opt_str(d, "parent_instruction"),
        _req_str(d, "mint"), _opt_str(d, "symbol"), _req_int(d, "decimals", 255),
        _req_int(d, "amount_raw", U128_MAX), _opt_decimal(d, "usd"), _opt_decimal(d, "usd_price"),
        _opt_str(d, "payer_owner"), _opt_str(d, "payer_account"), _opt_str(d, "recipient_owner"),
        _opt_str(d, "recipient_account"), _opt_str(d, "sub_dao"), commitment, _opt_str(d, "reason"),
        _opt_str(d, "rule_version"), _schema_version(d), row_version(slot, commitment), 0,
    )
    return flow_table(flow_class), row


@lru_cache(maxsize=1)
def _helium_programs() -> frozenset[str]:
    from indexer.networks.config import default_config

    return frozenset(default_config().helium.programs)


def instruction_network(d: dict, src: Source) -> str:
    """The record's network, else the message header's, else helium for a Helium program id: the
    table's sorting key starts with network, and an instruction record may not carry one."""
    network = _opt_str(d, "network") or src.headers.get("network", "")
    program_id = d.get("program_id")
    if not network and type(program_id) is str and program_id in _helium_programs():  # a list is unhashable
        network = "helium"
    return network


def instruction_row(d: dict, src: Source) -> tuple[TableSpec, tuple]:
    sig = _req_str(d, "signature")
    path = _req_str(d, "ix_path")
    event_id = d.get("event_id") or make_event_id(sig, path)
    if type(event_id) is not str:
        raise Rejected("invalid_field", "event_id must be a string")
    slot = _req_int(d, "slot", MAX_SLOT)
    block_time = _opt_int(d, "block_time", MAX_BLOCK_TIME) or 0
    commitment = _commitment(d)
    tx_error = d.get("tx_error")
    row = (
        event_id, sig, path, instruction_network(d, src), block_time // 86400,
        block_time * 1000, slot, _opt_str(d, "program_id"), _opt_str(d, "program"), _opt_str(d, "instruction"),
        _json_text(d.get("args")), _json_text(d.get("accounts")), _json_text(d.get("extra_accounts")),
        _opt_str(d, "outer_program"), _opt_str(d, "outer_instruction"), _opt_str(d, "parent_instruction"),
        None if tx_error is None else _json_text(tx_error), commitment, _schema_version(d),
        row_version(slot, commitment), 0,
    )
    return INSTRUCTIONS, row


_DEADLETTER_KNOWN = frozenset({
    "event_id", "signature", "slot", "block_time", "ix_path", "program_id", "program", "stage", "reason",
    "detail", "raw_hex", "tx_error", "commitment", "schema_version", "network",
})


def deadletter_row(d: dict, src: Source) -> tuple[TableSpec, tuple]:
    """An upstream dead letter (the indexer could not decode/classify something)."""
    sig = _opt_str(d, "signature")
    path = _opt_str(d, "ix_path")
    stage = _opt_str(d, "stage")
    event_id = d.get("event_id") or (f"{sig}:{path}:{stage}" if sig else src.kafka_id)
    block_time = _opt_int(d, "block_time", MAX_BLOCK_TIME)
    time_ms = block_time * 1000 if block_time else src.timestamp_ms
    tx_error = d.get("tx_error")
    extra = {k: v for k, v in d.items() if k not in _DEADLETTER_KNOWN}
    row = (
        str(event_id), "upstream", _opt_str(d, "network") or src.headers.get("network", ""),
        time_ms // 86_400_000, time_ms, sig, _opt_int(d, "slot") or 0, path, _opt_str(d, "program_id"),
        _opt_str(d, "program"), stage, _opt_str(d, "reason"), _opt_str(d, "detail"), _opt_str(d, "raw_hex"),
        None if tx_error is None else _json_text(tx_error), _opt_str(d, "commitment"),
        orjson.dumps(extra).decode() if extra else "", src.topic, src.partition, src.offset, 1, 0,
    )
    return DEAD_LETTERS, row


def status_row(d: dict) -> tuple[TableSpec, tuple]:
    sig = _req_str(d, "signature")
    slot = _req_int(d, "slot", MAX_SLOT)
    status = d.get("status")
    if type(status) is not str or status not in STATUSES:
        raise Rejected("invalid_field", f"status must be finalized|retracted, got {status!r:.40}")
    ids = d.get("event_ids") or []
    if type(ids) is not list or any(type(i) is not str for i in ids):
        raise Rejected("invalid_field", "event_ids must be a list of strings")
    _schema_version(d)
    block_time = _opt_int(d, "block_time", MAX_BLOCK_TIME) or 0
    return COMMITMENT_STATUS, (sig, slot, status, ids, block_time * 1000, row_version(slot, status))


def sink_dead_letter(src: Source, stage: str, reason: str, detail: str) -> tuple:
    """A dead-letter row for a message the sink itself could not parse or insert."""
    raw = src.value or b""
    if len(raw) > MAX_RAW_BYTES:
        detail = f"{detail} [raw truncated from {len(raw)} bytes]"
        raw = raw[:MAX_RAW_BYTES]
    sig = (src.key or b"").decode("utf-8", "replace")
    return (
        src.kafka_id, "sink", src.headers.get("network", ""), src.timestamp_ms // 86_400_000, src.timestamp_ms,
        sig, 0, "", "", "", stage, reason, detail[:4000], raw.hex(), None, "", "", src.topic, src.partition,
        src.offset, 1, 0,
    )


def parse(kind: str, src: Source) -> tuple[TableSpec, tuple]:
    """Route one message by its topic kind; raises Rejected when it cannot become a row."""
    d = decode_value(src.value)
    if kind == KIND_FLOW:
        return flow_row(d)
    if kind == KIND_INSTRUCTION:
        return instruction_row(d, src)
    if kind == KIND_STATUS:
        return status_row(d)
    if kind == KIND_DEADLETTER:
        return deadletter_row(d, src)
    raise Rejected("unknown_topic", src.topic)
