"""Flow events inserted by ClickHouse's own JSON parser: raw Kafka values in, rows out, no Python per field.

Why: decoding 50k events with orjson, validating 34 fields per event in Python and encoding them again
with clickhouse-connect costs several times more than the insert itself. Here the raw values of one
table's messages are joined into one JSONEachRow payload and inserted with one `INSERT ... SELECT`
whose WHERE clause holds every check the exact path (rows.flow_row) makes, as `throwIf`: one invalid
row fails the whole statement, and the caller then runs the exact per-message path on that batch (which
finds the offenders, dead-letters them with their reason, and inserts the rest). So this path only
ever accepts a SUBSET of what the exact path accepts, and produces the same row for it.

Where ClickHouse's reader is laxer than orjson, the payload is refused before ClickHouse sees it, or
the SQL checks make up for it:
- message boundaries: every value is wrapped as `{"_b":"<nonce>.<i>",<body>,"_e":"<nonce>.<i>"}` with
  a random per-attempt nonce, and each row must carry equal `_b`/`_e`. A row can only start at a
  wrapper's `{` (where `_b` is its first key) and only end right after its own `_e` at depth 1, so each
  row is exactly one message, whatever bytes a poison message holds (it cannot guess the nonce).
- lexical leniency (`+5`, raw control characters in strings, escapes, invalid UTF-8): the payload
  must be ASCII without `+`, `\\` or control bytes, or it goes the exact path. Without backslashes
  every `"` delimits a string, which keeps these byte-level checks exact.
- every key of FlowEvent v1 is declared and an unknown key fails (ClickHouse would skip an unknown
  value with its own lenient reader; the exact path ignores unknown keys, so such messages go there).
- types: strings are read as String (numbers, bools, objects, arrays refused), so the only place a
  number can be is the value of one of the six integer keys. Those are read as Nullable(Int128), and
  ClickHouse's integer reader is lenient (a quoted "5" reads as 5, overflow wraps), so the payload is
  refused unless the value after every integer key is exactly `null` or a canonical integer literal
  of at most 20 digits (`_BAD_INT`: no quotes, no leading zero like orjson, no fraction or exponent,
  no bool; 20 digits always fit Int128; the SQL range checks then apply). Reading them typed instead
  of as Dynamic halves ClickHouse's CPU per row (measured 15.0 -> 7.5 us/row with the settings below).
  Without backslashes the bytes `"slot"` followed by a colon can only be that key. `null` of a string field
  reads as '' (the exact path maps it to '' too, and required strings must be non-empty anyway);
  a missing non-nullable field fails (force_null_for_omitted_fields); a duplicate key fails.
- ranges, enums, event_id rule, day, decimals: SQL checks mirroring columns.py / rows.py.
- usd / usd_price (Decimal(38, 12)): the exact path hands the text to clickhouse-connect, which stores
  int(Decimal(text) * Decimal('1000000000000.000000000000')) in Python's default context (28 digits).
  That product's coefficient is the text's digits followed by 24 zeros, so the 28-digit rounding drops
  only zeros while the text has at most 28 digits: the value is then the text truncated toward zero
  to 12 decimals, which is what toDecimal128OrNull does. So a plain decimal text of at most 26 integer
  digits and at most 28 digits in all passes (the listener's USD values carry up to 16 decimals);
  longer texts (where the exact path rounds) go the exact path.

Only the embedded engine (chdb) reads the payload from a local file (`file()` table function); a
server DSN keeps the column path (its `input()` would need the payload in the HTTP body).

The pieces that are not about flows (the nonce wrapper `wrap`, the typed-integer guard `int_guard`,
the strict reader SETTINGS, `slot_hints`, `write_payload`) are shared with the instruction records'
path (jsoninstructions.py).
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Sequence
from itertools import chain, repeat
from operator import itemgetter

from pipelines.clickhouse.tables import COMMITMENT_RANK, FLOW_CLASSES_BY_TABLE, FLOW_COLUMNS, TableSpec
from pipelines.sink.rows import MAX_BLOCK_TIME, MAX_SLOT, U64_MAX

_STR_FIELDS = ("event_id", "signature", "ix_path", "network", "flow_class", "subtype", "day", "program_id",
               "program", "instruction", "outer_program", "outer_instruction", "parent_instruction", "mint",
               "symbol", "payer_owner", "payer_account", "recipient_owner", "recipient_account", "sub_dao",
               "commitment", "reason", "rule_version", "schema_version", "amount")
_REQUIRED_STR = ("signature", "ix_path", "network", "flow_class", "subtype", "mint")
_INT_FIELDS = {"leg": 65535, "slot": MAX_SLOT, "block_time": MAX_BLOCK_TIME, "epoch": U64_MAX, "decimals": 255,
               "amount_raw": U64_MAX}   # larger amounts (<= u128) are left to the exact path
_NULLABLE_INT = ("leg", "epoch")

STRUCTURE = ", ".join(["_b String", "_e String", *(f"{f} String" for f in _STR_FIELDS),
                       *(f"{f} Nullable(Int128)" for f in _INT_FIELDS), "usd Nullable(String)",
                       "usd_price Nullable(String)"])

# strict reading: see the module docstring for why each one is set
SETTINGS = {
    "input_format_skip_unknown_fields": 0,
    "input_format_force_null_for_omitted_fields": 1,  # a missing String field fails the statement
    "input_format_null_as_default": 1,                # null string -> '' (as rows._opt_str); null int -> NULL
    "input_format_allow_errors_num": 0,
    "input_format_allow_errors_ratio": 0,
    "input_format_json_ignore_unnecessary_fields": 0,  # duplicate keys fail
    "input_format_json_read_numbers_as_strings": 0,
    "input_format_json_read_bools_as_numbers": 0,
    "input_format_json_read_bools_as_strings": 0,
    "input_format_json_read_objects_as_strings": 0,
    "input_format_json_read_arrays_as_strings": 0,
    "input_format_json_throw_on_bad_escape_sequence": 1,
    "input_format_try_infer_dates": 0,
    "input_format_try_infer_datetimes": 0,
    "input_format_json_try_infer_numbers_from_strings": 0,
    # speed, not meaning: one parsing thread (the fetch and the payload build use the other core; the
    # parallel reader's splitting and squashing cost ~10 % more CPU per row here), and no replacing
    # merge of the inserted block itself (ReplacingMergeTree collapses versions at merges and FINAL,
    # which every view reads with; the same block collapsed at insert cost ~10 % more CPU per row)
    "input_format_parallel_parsing": 0,
    "optimize_on_insert": 0,
}



def settings_clause(settings: dict[str, int]) -> str:
    """` SETTINGS k = v, ...` to end an INSERT ... SELECT with: the query's own settings apply to the
    file() reader and to the insert alike. Why not `client.command(sql, settings=...)`: clickhouse-connect's
    chdb backend applies per-call settings with one `SELECT ... FROM system.settings`, one `SET` per setting
    and one `SET` back per setting, each a query of its own: ~37 queries and ~15 ms of CPU per insert with
    these 17 settings (measured), a fixed cost that small live batches pay on every flush."""
    return " SETTINGS " + ", ".join(f"{k} = {int(v)}" for k, v in settings.items())


# After deleting every byte the payload may hold, what is left must be exactly the row separators:
# control bytes, '+', '\\' and non-ASCII bytes send the payload to the exact path.
_SUSPECT = bytes(b for b in range(256) if b < 0x20 or b >= 0x80 or b in b"+\\")
_NORMAL = bytes(b for b in range(256) if b not in _SUSPECT)
# an integer key whose value is not exactly null or a canonical integer (see the module docstring)


def int_guard(keys: Sequence[str]) -> re.Pattern[bytes]:
    """Matches an integer key (any of `keys`, anywhere) whose value is not exactly null or a canonical
    integer of at most 20 digits: such a payload must not reach ClickHouse's lenient Int128 reader."""
    return re.compile(rb'"(?:' + "|".join(keys).encode() +
                      rb')" *: *+(?!null *[,}]|-?(?:0|[1-9][0-9]{0,19}) *[,}])')


_BAD_INT = int_guard(tuple(_INT_FIELDS))
_BODY = itemgetter(slice(1, -1))          # a value without its outer braces


_SLOT = re.compile(rb'"slot" *: *([0-9]{1,20})')
_DECIMAL_RE = r"^-?[0-9]{1,26}(\\.[0-9]{1,27})?$"
_DECIMAL_MAX_DIGITS = 28     # see the module docstring: beyond it the exact path rounds, ClickHouse truncates


def _int(name: str) -> str:
    """The JSON integer as Nullable(Int128) (NULL for null or a missing key); _BAD_INT vetted the text."""
    return name


def _checks(flow_classes: Sequence[str]) -> list[str]:
    classes = ", ".join(f"'{c}'" for c in flow_classes)
    out = [f"flow_class IN ({classes})", "commitment IN ('confirmed', 'finalized')",
           "schema_version = 'v1'", "length(amount) >= 0", *(f"{f} != ''" for f in _REQUIRED_STR),
           "isNotNull(day32)", "toString(day32) = day",   # only the canonical YYYY-MM-DD prints back
           "day32 BETWEEN toDate32('1970-01-01') AND toDate32('2149-06-06')",
           "event_id = if(isNull(i_leg), concat(signature, ':', ix_path), "
           "concat(signature, ':', ix_path, ':', toString(i_leg)))",
           *(f"(isNull({k}) OR (match({k}, '{_DECIMAL_RE}') AND "
             f"length({k}) - startsWith({k}, '-') - (position({k}, '.') > 0) <= {_DECIMAL_MAX_DIGITS}))"
             for k in ("usd", "usd_price"))]
    for name, hi in _INT_FIELDS.items():
        present = f"(isNotNull(i_{name}) AND i_{name} BETWEEN 0 AND {hi})"
        out.append(f"(isNull({name}) OR {present})" if name in _NULLABLE_INT else present)
    return out


def insert_statement(database: str, table: str, columns: Sequence[str], values: dict[str, str], inner: str,
                     path: str, structure: str, checks: Sequence[str], ranges: Sequence[tuple[int, int]],
                     what: str, wrapped: bool = True) -> str:
    """`INSERT INTO table (columns) SELECT ... FROM file(payload)` failing as a whole (throwIf) unless
    every row passes `checks`, carries the wrapper's equal marks and lies in the hinted slot ranges.
    `values` maps a column to its expression (default: the column of the same name), `inner` adds
    expressions to the file's columns (the typed integers `i_<name>`). `wrapped`: the payload carries
    the nonce wrapper (`wrap`), whose marks every row must repeat."""
    checks = [*(("_b = _e", "_b != ''") if wrapped else ()), *checks,
              "(" + " OR ".join(f"i_slot BETWEEN {int(lo)} AND {int(hi)}" for lo, hi in ranges) + ")"]
    select = ", ".join(values.get(c, c) for c in columns)
    quoted = path.replace("\\", "\\\\").replace("'", "\\'")
    return (f"INSERT INTO {database}.{table} ({', '.join(columns)}) SELECT {select} FROM ("
            f"SELECT *, {inner} FROM file('{quoted}', 'JSONEachRow', '{structure}')) "
            f"WHERE throwIf(NOT ({' AND '.join(checks)}), 'depinflow: {what} batch needs the exact path') = 0")


def insert_sql(database: str, spec: TableSpec, path: str, ranges: Sequence[tuple[int, int]]) -> str:
    """INSERT of the payload file into `spec`, failing as a whole if any row would need the exact path."""
    rank = COMMITMENT_RANK
    values = {
        "leg": "CAST(i_leg AS Nullable(UInt16))", "day": "toDate(day32)",
        "block_time": "toDateTime64(toUInt64(i_block_time), 3, 'UTC')", "slot": "toUInt64(i_slot)",
        "epoch": "CAST(i_epoch AS Nullable(UInt64))", "decimals": "toUInt8(i_decimals)",
        "amount_raw": "toUInt128(i_amount_raw)", "usd": "toDecimal128OrNull(usd, 12)",
        "usd_price": "toDecimal128OrNull(usd_price, 12)",
        "version": (f"toUInt64(i_slot) * 4 + if(commitment = 'finalized', {rank['finalized']}, "
                    f"{rank['confirmed']})"),
        "is_deleted": "0",
    }
    ints = ", ".join(f"{_int(n)} AS i_{n}" for n in _INT_FIELDS)
    return insert_statement(database, spec.name, [name for name, _ in FLOW_COLUMNS], values,
                            f"{ints}, toDate32OrNull(day) AS day32", path, STRUCTURE,
                            _checks(FLOW_CLASSES_BY_TABLE[spec.name]), ranges, "flow")


def objects(values: Sequence[bytes | None]) -> bool:
    """Every value is bytes that start with '{' and end with '}' (no tombstone)."""
    return None not in values and all(map(bytes.startswith, values, repeat(b"{"))) and \
        all(map(bytes.endswith, values, repeat(b"}")))


def wrap(values: Sequence[bytes]) -> bytes:
    """`{"_b":"<nonce>.<i>",<body>,"_e":"<nonce>.<i>"}` per value, one a line (see the module docstring)."""
    nonce = secrets.token_hex(8).encode()
    marks = list(map((nonce + b".%d").__mod__, range(len(values))))    # C-level passes, no frames
    return b"".join(chain.from_iterable(zip(
        repeat(b'{"_b":"'), marks, repeat(b'",'), map(_BODY, values), repeat(b',"_e":"'), marks,
        repeat(b'"}\n'))))


def payload(values: Sequence[bytes | None]) -> bytes | None:
    """The wrapped JSONEachRow payload (rows in the order of `values`), or None when some value must go
    the exact path anyway (then ClickHouse is not asked at all)."""
    if not objects(values):      # a tombstone, or not {...}
        return None
    data = wrap(values)
    if data.translate(None, _NORMAL) != b"\n" * len(values) or _BAD_INT.search(data):
        return None
    return data


def slot_hints(data: bytes, counts: Sequence[int]) -> list[tuple[int, int]] | None:
    """Slot range of each consecutive group of `counts` rows in the payload, read from the raw bytes.

    Only a hint: the SQL checks that every row's slot lies in the ranges, so a wrong hint sends the
    batch to the exact path, never a row astray. Without backslashes every '"slot":' is a key, and a
    payload that passes holds exactly one per row, so the matches line up with the rows.
    """
    slots = _SLOT.findall(data)
    if len(slots) != sum(counts):
        return None
    out, at = [], 0
    for n in counts:
        group = list(map(int, slots[at:at + n]))
        at += n
        if group:
            out.append((min(group), max(group)))
    return out


def write_payload(data: bytes) -> str:
    """The payload as a file ClickHouse can read (RAM-backed /dev/shm when there is one)."""
    shm = "/dev/shm"
    fd, path = tempfile.mkstemp(prefix="depinflow-sink-", suffix=".jsonl",
                                dir=shm if os.path.isdir(shm) and os.access(shm, os.W_OK) else None)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path
