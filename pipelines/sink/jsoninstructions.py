"""Instruction records inserted by ClickHouse's own JSON parser, like the flows (jsonflows.py).

Why: instruction records are about two thirds of the rows of a real run, and the exact path
(rows.instruction_row) decodes each with orjson, checks it field by field in Python, re-encodes its
`args` / `accounts` / `extra_accounts` / `tx_error` with orjson and hands the row to clickhouse-connect:
~20-30 us of CPU per record. Here the raw values go into one JSONEachRow payload and one
`INSERT ... SELECT` (jsonflows.insert_statement) whose WHERE clause holds every check of the exact path
as `throwIf`; a refused statement sends the whole group to the exact path. So this path only ever accepts
a SUBSET of what the exact path accepts, and writes the same row for it (tests/pipelines/sink/
test_jsoninstructions.py compares SELECT * of both over a simulated day and hypothesis-made poison).

The one thing ClickHouse cannot check is the exact path's re-encoding: the exact path stores
`orjson.dumps(args)` (likewise accounts, extra_accounts, tx_error), while ClickHouse, reading an object
or array into a String column (input_format_json_read_objects_as_strings / _arrays_as_strings),
copies its raw text. The two are equal exactly when the text is orjson's own serialization of what it
denotes. So a record takes this path only if it IS orjson's canonical text: `orjson.dumps(orjson.loads(v))
== v` (per record, before ClickHouse is asked; `eligible`). orjson's serialization is compositional (an
object is its keys and values' serializations in order, without spaces), so every nested value's text
is then orjson.dumps of that value; and the round trip also refuses what ClickHouse reads more leniently
or differently than orjson: duplicate keys at any depth (orjson keeps the last, the text both), spaces,
non-canonical numbers (`1E5`, `-0`, `1.50`), numbers beyond 64 bits, invalid UTF-8, non-canonical escapes
(orjson writes `\"`, `\\`, `\n`, `\u0001`... and ClickHouse decodes them to the same bytes), and
anything after the object. Records that are not canonical go the exact path one by one; the rest of the
batch still goes through ClickHouse (a listener record with a string tx_error holds escapes and passes).
Canonical text is also exactly one JSON object without a newline, so the payload needs no nonce
wrapper (jsonflows.wrap): line i is record i. The round trip costs ~5 us per record, about what
rows.parse spends on its three re-encodings alone.

What the SQL mirrors (rows.instruction_row):
- signature, ix_path: non-empty strings; network: a non-empty string (the exact path would fall back to
  the message header or the program id, which the payload does not carry: such records are refused).
- every plain string field is read as String and must be a JSON string or null (null reads as '', as
  the exact path's _opt_str): because objects and arrays are read as text here, a text starting with
  '{' or '[' is refused (it may have been an object; a real string starting so just goes the exact
  path); numbers and bools are refused by the reader (read_numbers/bools_as_strings = 0).
- event_id: '' (or null) means signature:ix_path, as the exact path's `or make_event_id(...)`.
- slot (required, <= MAX_SLOT) and block_time (null -> 0, <= MAX_BLOCK_TIME): read as Nullable(Int128);
  `eligible` lets through only records whose parsed slot is an int and block_time an int or null (in
  canonical text: a canonical integer literal; not quoted, not a float, not a bool).
- commitment: '' (or null) means confirmed, else confirmed|finalized; schema_version: v1 (a missing key
  fails the reader, force_null_for_omitted_fields: the exact path's default goes the exact path).
- args / accounts / extra_accounts: object, array, string (as is) or null (''); tx_error: the same, null
  -> NULL (Nullable(String)). Numbers and bools there are refused (the exact path would dumps them).
- unknown keys fail the reader (the exact path ignores them: those records go the exact path).
- day = block_time // 86400, block_time in ms, version = slot * 4 + rank(commitment), is_deleted = 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from pipelines.clickhouse.tables import COMMITMENT_RANK, INSTRUCTIONS
from pipelines.sink import jsonflows
from pipelines.sink.rows import MAX_BLOCK_TIME, MAX_SLOT

# plain string fields (a JSON string or null) and JSON-text fields (object, array, string or null)
_STR_FIELDS = ("event_id", "network", "signature", "ix_path", "program_id", "program", "instruction",
               "outer_program", "outer_instruction", "parent_instruction", "commitment", "schema_version")
_TEXT_FIELDS = ("args", "accounts", "extra_accounts")
_INT_FIELDS = {"slot": MAX_SLOT, "block_time": MAX_BLOCK_TIME}

STRUCTURE = ", ".join([*(f"{f} String" for f in (*_STR_FIELDS, *_TEXT_FIELDS)),
                       "tx_error Nullable(String)", *(f"{f} Nullable(Int128)" for f in _INT_FIELDS)])

# the flows' strict reader, with objects and arrays read as their text (args, accounts, ...)
SETTINGS = {**jsonflows.SETTINGS, "input_format_json_read_objects_as_strings": 1,
            "input_format_json_read_arrays_as_strings": 1}



def _eligible(value: bytes | None) -> int | None:
    """The record's slot if it may go through ClickHouse, else None: canonical orjson text of an object
    (see the module docstring) whose top-level slot is an integer and block_time an integer or null.
    Types are read from the parsed value: in canonical text an int is a canonical integer literal, which
    ClickHouse's Int128 reader reads as the same number (ranges are the SQL's job)."""
    if value is None:
        return None
    try:
        d = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if type(d) is not dict or orjson.dumps(d) != value:
        return None
    slot, block_time = d.get("slot"), d.get("block_time")
    if type(slot) is not int or not (block_time is None or type(block_time) is int):
        return None
    return slot


def eligible(values: Sequence[bytes | None]) -> list[int | None]:
    """Per value: its slot when it may go through ClickHouse, None when it must go the exact path.

    One Python call per record (orjson's round trip is most of it); this also yields the slot hints
    that the flows read from the payload with a regex (slower than reading the parsed value here)."""
    return list(map(_eligible, values))


def payload(values: Sequence[bytes]) -> bytes:
    """The JSONEachRow payload of eligible values, one a line. No nonce wrapper: an eligible value is
    exactly one JSON object without a newline (orjson's text), so line i is message i."""
    return b"\n".join([*values, b""])      # one copy of the bytes (a trailing `+ b"\n"` copies them again)


def _checks() -> list[str]:
    out = ["signature != ''", "ix_path != ''", "network != ''",
           *(f"NOT startsWith({f}, '{{') AND NOT startsWith({f}, '[')" for f in _STR_FIELDS),
           "c_commitment IN ('confirmed', 'finalized')", "schema_version = 'v1'",
           f"isNotNull(i_slot) AND i_slot BETWEEN 0 AND {MAX_SLOT}",
           f"(isNull(i_block_time) OR i_block_time BETWEEN 0 AND {MAX_BLOCK_TIME})"]
    return out


def insert_sql(database: str, path: str, ranges: Sequence[tuple[int, int]]) -> str:
    """INSERT of the payload file into `instructions`, failing as a whole if any row would need the
    exact path."""
    rank = COMMITMENT_RANK
    values = {
        "event_id": "if(event_id = '', concat(signature, ':', ix_path), event_id)",
        "day": "toDate(toUInt16(intDiv(bt, 86400)))",       # a UInt16 is a day number (<= 65535 here)
        "block_time": "toDateTime64(bt, 3, 'UTC')", "slot": "toUInt64(i_slot)",
        "commitment": "c_commitment",
        "version": (f"toUInt64(i_slot) * 4 + if(c_commitment = 'finalized', {rank['finalized']}, "
                    f"{rank['confirmed']})"),
        "is_deleted": "0",
    }
    inner = ("slot AS i_slot, block_time AS i_block_time, toUInt64(ifNull(block_time, 0)) AS bt, "
             "if(commitment = '', 'confirmed', commitment) AS c_commitment")
    return jsonflows.insert_statement(database, INSTRUCTIONS.name, INSTRUCTIONS.names, values, inner, path,
                                      STRUCTURE, _checks(), ranges, "instruction", wrapped=False)
