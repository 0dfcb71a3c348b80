"""ClickHouse-parsed instruction records (sink/jsoninstructions.py) against the exact path (rows.parse):
for every record of a simulated day and for hypothesis-made poison, the JSON path accepts only records
the exact path accepts, and writes the SAME row (SELECT * of both tables compared)."""

from __future__ import annotations

import copy
import json

import orjson
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from pipelines.clickhouse.migrate import migrate
from pipelines.clickhouse.tables import INSTRUCTIONS
from pipelines.kafka.messages import OutMessage, record_message
from pipelines.sink import jsoninstructions
from pipelines.sink.rows import KIND_INSTRUCTION, MAX_BLOCK_TIME, MAX_SLOT, Rejected, Source, parse
from pipelines.sink.writer import Writer
from tests.fuzz.corpus import SPECIAL_VALUES, HypChooser, mutate_json, mutate_text
from tests.fuzz.profiles import LONG, LONG_FACTOR
from tests.pipelines.sink.helpers import listener_day
from tests.pipelines.sink.helpers import set_value as _set


def day_values() -> tuple[bytes, ...]:
    """Every instruction record the listener's processor publishes for the simulated day (seed 7)."""
    return tuple(m.value for m in listener_day() if m.topic == "day.instructions.v1")


def base() -> dict:
    return orjson.loads(day_values()[0])


def variant(i: int, **changes) -> bytes:
    d = base()
    d["signature"] = f"variant{i:04d}"
    d["event_id"] = f"variant{i:04d}:{d['ix_path']}"
    d.update(changes)
    return orjson.dumps(d)


def boundary_values() -> list[bytes]:
    """Values the simulator does not produce but the exact path accepts."""
    return [variant(1, block_time=0), variant(2, block_time=MAX_BLOCK_TIME), variant(3, block_time=None),
            variant(4, slot=MAX_SLOT, commitment="finalized"), variant(5, slot=0), variant(6, commitment=""),
            variant(7, commitment=None), variant(8, event_id=""), variant(9, event_id=None),
            variant(10, event_id="any text the record claims"),
            variant(11, tx_error={"InstructionError": [0, "Custom\"quoted\"\n"]}), variant(12, tx_error="plain"),
            variant(13, args="text args", accounts=[], extra_accounts=["a", "b"]),
            variant(14, args=None, accounts=None, extra_accounts=None, tx_error=None),
            variant(15, program_id=None, program="", instruction="é😀 ünïcode", outer_program=None),
            variant(16, args={"nested": {"deep": [1, -2, 1.5, 1e300, True, None, "x\\y", {}]}, "": ""}),
            variant(17, parent_instruction="a\tb\u0001"), variant(18, args=[]), variant(19, args={}),
            variant(20, tx_error=[1, 2])]


def json_insert(writer: Writer, values: list[bytes]) -> bool:
    """The sink's JSON path for these values alone: every value eligible and ClickHouse accepts them."""
    slots = jsoninstructions.eligible(values)
    if not values or None in slots:
        return False
    return writer.insert_json(INSTRUCTIONS, jsoninstructions.payload(values), [(min(slots), max(slots))])


def exact_rows(values: list[bytes]) -> tuple[list[tuple], list[str]]:
    """(rows, rejection reasons) of the exact path, which reads the network header as a fallback."""
    rows, reasons = [], []
    for i, v in enumerate(values):
        src = Source("t.instructions.v1", 0, i, 0, b"k", v, [("kind", b"instruction")])
        try:
            rows.append(parse(KIND_INSTRUCTION, src)[1])
        except Rejected as rej:
            reasons.append(rej.reason)
    return rows, reasons


def table(client, db: str) -> list[tuple]:
    return client.query(f"SELECT * EXCEPT (inserted_at) FROM {db}.instructions "
                        "ORDER BY event_id, version, args, tx_error").result_rows


@pytest.fixture
def dbs(ch_client, ch_database):
    """(json writer, exact writer, json db, exact db) on two fresh databases."""
    other = f"{ch_database}_exact"
    migrate(ch_client, ch_database)
    migrate(ch_client, other)
    yield Writer(ch_client, ch_database), Writer(ch_client, other), ch_database, other
    ch_client.command(f"DROP DATABASE IF EXISTS {other} SYNC")


def test_every_record_of_a_simulated_day_takes_the_json_path_with_the_exact_rows(ch_client, dbs):
    json_writer, exact_writer, db, other = dbs
    values = [*day_values(), *boundary_values()]
    assert len(day_values()) > 5000
    assert None not in jsoninstructions.eligible(values)
    assert json_insert(json_writer, values)
    rows, reasons = exact_rows(values)
    assert reasons == []
    assert exact_writer.insert(INSTRUCTIONS, rows, [None] * len(rows)) == []
    got = table(ch_client, db)
    assert len(got) == len(values)
    assert got == table(ch_client, other)
    # the listener's string tx_errors hold escaped quotes: they pass as canonical orjson text
    assert any(b"\\" in v for v in day_values())


def refused_cases() -> dict[str, bytes | None]:
    """Records the JSON path must refuse (built lazily: the simulated day takes seconds)."""
    good = day_values()[0]
    return {
        # the exact path rejects these
        "quoted slot": _set(good, "slot", '"5"'),
        "float slot": _set(good, "slot", "5.0"),
        "slot above the version range": _set(good, "slot", str(MAX_SLOT + 1)),
        "negative block_time": _set(good, "block_time", "-1"),
        "block_time past 2149": _set(good, "block_time", str(MAX_BLOCK_TIME + 1)),
        "bool block_time": _set(good, "block_time", "true"),
        "null slot": _set(good, "slot", "null"),
        "object signature": _set(good, "signature", '{"a":1}'),
        "array ix_path": _set(good, "ix_path", '["1"]'),
        "number program": _set(good, "program", "5"),
        "empty signature": _set(good, "signature", '""'),
        "pending commitment": _set(good, "commitment", '"pending"'),
        "object commitment": _set(good, "commitment", '{"c":1}'),
        "schema v2": _set(good, "schema_version", '"v2"'),
        "null schema_version": _set(good, "schema_version", "null"),
        "object event_id": _set(good, "event_id", '{"e":1}'),
        "not json": b"{not json",
        "tombstone": None,
        # the exact path accepts these but writes something ClickHouse could not reproduce: exact path
        "empty network (header fallback)": _set(good, "network", '""'),
        "falsy array event_id": _set(good, "event_id", "[]"),
        "falsy false commitment": _set(good, "commitment", "false"),
        "number args": _set(good, "args", "5"),
        "bool tx_error": _set(good, "tx_error", "true"),
        "spaces": good.replace(b'"slot":', b'"slot": '),
        "duplicate nested key": good.replace(b'"args":{', b'"args":{"x":1,"x":2,'),
        "duplicate top key": good[:-1] + b',"slot":1}',
        "unknown key": good[:-1] + b',"extra":1}',
        "missing key": orjson.dumps({k: v for k, v in orjson.loads(good).items() if k != "program"}),
        "non-canonical number": good.replace(b'"args":{', b'"args":{"n":1E5,'),
        "escaped non-ASCII": _set(good, "program", '"\\u00e9"'),
        "string starting with a brace": _set(good, "program", '"{x"'),
        "two objects": good + good,
        "top-level array": b"[" + good + b"]",
    }


def test_what_the_exact_path_must_judge_never_passes_the_json_path(ch_client, ch_database):
    """Each case among good records: the JSON path refuses it (before or in ClickHouse), writes
    nothing, and the same records without it go through (control). One database for all cases."""
    migrate(ch_client, ch_database)
    writer = Writer(ch_client, ch_database)
    count = f"SELECT count() FROM {ch_database}.instructions"
    for name, bad in sorted(refused_cases().items()):
        ch_client.command(f"TRUNCATE TABLE {ch_database}.instructions")
        values = [variant(i) for i in range(30, 40)]
        values.insert(5, bad)
        assert not json_insert(writer, values), name
        assert ch_client.query(count).result_rows == [(0,)], name
        del values[5]
        assert json_insert(writer, values), name
        assert ch_client.query(count).result_rows == [(10,)], name


def _dumps(doc) -> bytes:
    """orjson's text, or (for integers beyond 64 bits, which orjson cannot write) the json module's."""
    try:
        return orjson.dumps(doc)
    except TypeError:
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def _poison(data) -> bytes:
    """A mutated listener record: structural (retyped / deleted / swapped values), re-serialized
    differently (spaces, escapes, key order), or damaged bytes."""
    ch = HypChooser(data)
    raw = ch.pick(day_values()[:200])
    how = ch.pick(("json", "json", "json", "reserialize", "text", "field"))
    if how == "json":
        return _dumps(mutate_json(orjson.loads(raw), ch))
    if how == "field":
        d = orjson.loads(raw)
        d[ch.pick(sorted(d))] = copy.deepcopy(ch.pick(SPECIAL_VALUES))
        return _dumps(d)
    if how == "reserialize":
        d = orjson.loads(raw)
        return json.dumps(d, separators=ch.pick(((",", ":"), (", ", ": "))), ensure_ascii=ch.pick((True, False)),
                          sort_keys=ch.pick((True, False))).encode()
    return mutate_text(raw, ch)


@settings(max_examples=120 * (LONG_FACTOR if LONG else 1), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_json_path_accepts_a_subset_of_the_exact_path_with_the_same_rows(ch_client, dbs, data):
    json_writer, exact_writer, db, other = dbs
    value = _poison(data)
    for d in (db, other):
        ch_client.command(f"TRUNCATE TABLE {d}.instructions")
    if not json_insert(json_writer, [value]):
        event("refused by the JSON path")
        return                                  # refused: the exact path judges it (any outcome is fine)
    event("accepted by the JSON path")
    rows, reasons = exact_rows([value])
    assert reasons == [], value
    assert exact_writer.insert(INSTRUCTIONS, rows, [None]) == []
    assert table(ch_client, db) == table(ch_client, other), value


def test_sink_sends_ineligible_records_the_exact_path_and_the_rest_through_clickhouse(sink_env):
    """In one batch: canonical records go through ClickHouse, a non-canonical one that the exact path
    accepts is written by the exact path, poison is dead-lettered, and all land exactly once."""
    topic = sink_env.topics.instructions
    good = [variant(i) for i in range(50, 60)]
    spaced = variant(60).replace(b'"slot":', b'"slot": ')            # valid, not canonical
    poison = _set(variant(61), "slot", '"61"')                       # exact path: invalid_field
    values = [*good[:5], spaced, poison, *good[5:]]
    sink_env.publisher.send([OutMessage(topic, b"one-partition", v, [("kind", b"instruction")]) for v in values])
    stats = sink_env.sink("g").run_until_idle()
    assert stats.json_rows == 10
    assert sink_env.q("SELECT signature FROM {db}.instructions FINAL ORDER BY signature") == \
        [(f"variant{i:04d}",) for i in range(50, 61)]
    assert sink_env.q("SELECT stage, reason FROM {db}.dead_letters FINAL") == [("sink.parse", "invalid_field")]


def test_sink_json_and_exact_paths_leave_the_same_instructions_table(sink_env):
    """The same topic drained once with the JSON path and once (another group, another database)
    with the exact path: identical tables."""
    values = [*day_values()[:300], *boundary_values()]
    sink_env.publisher.send([record_message(sink_env.topics.instructions, "instruction", orjson.loads(v))
                             for v in values])
    assert sink_env.sink("json").run_until_idle().json_rows == len(values)
    other = f"{sink_env.database}_exactsink"
    try:
        stats = sink_env.sink("exact", database=other, json_flows=False).run_until_idle()
        assert stats.json_rows == 0
        assert table(sink_env.client, sink_env.database) == table(sink_env.client, other)
    finally:
        sink_env.client.command(f"DROP DATABASE IF EXISTS {other} SYNC")
