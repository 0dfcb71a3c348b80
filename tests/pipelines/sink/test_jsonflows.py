"""ClickHouse-parsed flows (sink/jsonflows.py): same rows as the exact path, and every value the exact
path would judge differently refuses the WHOLE payload (nothing written), so the sink falls back."""

from __future__ import annotations

import orjson
import pytest

from indexer.networks.events import FlowEvent
from pipelines.clickhouse.migrate import migrate
from pipelines.clickhouse.tables import EMISSIONS, FLOW_TABLES, OTHER_FLOWS, USAGE_FEES
from pipelines.kafka.messages import OutMessage, flow_message
from pipelines.sink import jsonflows
from pipelines.sink.columns import flow_columns
from pipelines.sink.rows import MAX_SLOT
from pipelines.sink.service import header_table, route_flows, value_table
from pipelines.sink.writer import Writer
from tests.pipelines.sink.helpers import flow_events, ledger, listener_day
from tests.pipelines.sink.helpers import set_value as _set


def event(i: int, **kw) -> FlowEvent:
    base = dict(signature=f"sig{i:06d}", ix_path=f"{i % 4}.{i % 3}", network="helium", flow_class="usage_fee",
                subtype="data_transfer", slot=1000 + i, block_time=1774656000 + i, day="2026-03-28",
                program_id="prog", program="helium_sub_daos", instruction="burn", mint="DCmint", symbol="DC",
                amount_raw=10**9 + i, decimals=0)
    base.update(kw)
    return FlowEvent(**base)


def varied_events() -> list[FlowEvent]:
    """The simulator's real events plus the optional fields the simulator leaves empty."""
    evs = [ev for ev, _ in flow_events(ledger())]
    evs += [event(1, leg=0, epoch=20000, usd="12.5", usd_price="0.00001", payer_owner="p", recipient_owner="r",
                  outer_program="o", commitment="finalized", reason="why"),
            event(2, leg=65535, epoch=2**64 - 1, usd="-0.000000000001", usd_price="99999999999999999999999999.1",
                  amount_raw=2**64 - 1, decimals=255, slot=MAX_SLOT),
            event(3, flow_class="emission", subtype="rewards_escrow", day="2149-06-06", block_time=0),
            event(4, flow_class="other", subtype="unmatched", day="1970-01-01", symbol=""),
            # decimals beyond the column's 12: truncated alike while the text has <= 28 digits
            event(5, usd="3355.3954000208953899", usd_price="1.0000000000001"),
            event(6, usd="-0.9999999999999999", usd_price="0.123456789012345678901234567"),
            event(7, usd="1234567890123456.123456789012", usd_price="-0.0000000000001"),
            event(8, flow_class="purchase", subtype="hnt_burned", usd="99999999999999999999999999.99",
                  usd_price="-0")]
    return evs


def insert_json(writer: Writer, spec, values: list[bytes]) -> bool:
    data = jsonflows.payload(values)
    if data is None:
        return False
    ranges = jsonflows.slot_hints(data, [len(values)])
    return bool(ranges) and writer.insert_flow_json(spec, data, ranges)


def table_rows(client, db: str, table: str) -> list[tuple]:
    return client.query(f"SELECT * EXCEPT (inserted_at) FROM {db}.{table} ORDER BY event_id").result_rows


def test_json_path_writes_exactly_the_rows_of_the_exact_path(ch_client, ch_database):
    migrate(ch_client, ch_database)
    other = f"{ch_database}_exact"
    migrate(ch_client, other)
    try:
        by_table: dict[str, list[bytes]] = {}
        for ev in varied_events():
            by_table.setdefault(header_table([("flow_class", ev.flow_class.encode())]), []).append(ev.to_json())
        assert set(by_table) == {s.name for s in FLOW_TABLES}
        json_writer, exact_writer = Writer(ch_client, ch_database), Writer(ch_client, other)
        for spec in FLOW_TABLES:
            values = by_table[spec.name]
            assert insert_json(json_writer, spec, values), spec.name
            cols, kept, rejected = flow_columns([orjson.loads(v) for v in values])
            assert not rejected and len(kept) == len(values)
            exact_writer.insert_columns_raw(spec, cols)
            got = table_rows(ch_client, ch_database, spec.name)
            assert len(got) == len(values)
            assert got == table_rows(ch_client, other, spec.name)
    finally:
        ch_client.command(f"DROP DATABASE IF EXISTS {other} SYNC")


def test_every_flow_the_listener_publishes_for_a_day_takes_the_json_path_with_the_exact_rows(ch_client,
                                                                                             ch_database):
    """The listener's real flow messages (USD with up to 16 decimals, every flow class): each table's
    payload is accepted whole and ClickHouse writes what the exact path writes."""
    migrate(ch_client, ch_database)
    other = f"{ch_database}_exact"
    migrate(ch_client, other)
    try:
        values = [m.value for m in listener_day() if m.topic == "day.flows.v1"]
        assert any(b'"usd":"' in v for v in values)
        by_table = route_flows(values, values)
        assert None not in by_table and len(values) > 2000
        json_writer, exact_writer = Writer(ch_client, ch_database), Writer(ch_client, other)
        for name, vals in by_table.items():
            spec = {s.name: s for s in FLOW_TABLES}[name]
            assert insert_json(json_writer, spec, vals), name
            cols, kept, rejected = flow_columns([orjson.loads(v) for v in vals])
            assert not rejected and len(kept) == len(vals)
            exact_writer.insert_columns_raw(spec, cols)
            assert table_rows(ch_client, ch_database, name) == table_rows(ch_client, other, name)
    finally:
        ch_client.command(f"DROP DATABASE IF EXISTS {other} SYNC")


GOOD = event(7).to_json()


REFUSED = {
    "quoted integer": _set(GOOD, "slot", '"1007"'),
    "leading zero": _set(GOOD, "decimals", "00"),
    "plus sign": _set(GOOD, "slot", "+1007"),
    "float integer": _set(GOOD, "slot", "1007.0"),
    "exponent": _set(GOOD, "amount_raw", "1e9"),
    "bool integer": _set(GOOD, "decimals", "false"),
    "negative": _set(GOOD, "block_time", "-1"),
    "integer above u64": _set(GOOD, "amount_raw", str(2**64)),
    "slot above the version range": _set(GOOD, "slot", str(MAX_SLOT + 1)),
    "leg above u16": _set(GOOD, "leg", "65536"),
    "decimals above u8": _set(GOOD, "decimals", "256"),
    "object in an integer field": _set(GOOD, "leg", '{"slot":1}'),
    "number in a string field": _set(GOOD, "subtype", "5"),
    "null required string": _set(GOOD, "signature", "null"),
    "empty required string": _set(GOOD, "mint", '""'),
    "missing key": GOOD.replace(b',"symbol":"DC"', b""),
    "duplicate key": GOOD[:-1] + b',"slot":1007}',
    "unknown key": GOOD[:-1] + b',"extra":1}',
    "event_id mismatch": _set(GOOD, "event_id", '"sig000007:3.1:0"'),
    "flow class of another table": _set(GOOD, "flow_class", '"emission"'),
    "unknown flow class": _set(GOOD, "flow_class", '"gift"'),
    "impossible day": _set(GOOD, "day", '"2026-02-30"'),
    "ISO week day": _set(GOOD, "day", '"2026-W13-1"'),
    "day before 1970": _set(GOOD, "day", '"1969-12-31"'),
    "commitment empty": _set(GOOD, "commitment", '""'),
    "schema v2": _set(GOOD, "schema_version", '"v2"'),
    "usd of 29 digits (the exact path rounds)": _set(GOOD, "usd", '"12345678901234567.123456789012"'),
    "usd_price of 29 digits": _set(GOOD, "usd_price", '"0.1234567890123456789012345678"'),
    "usd with 27 integer digits": _set(GOOD, "usd", '"123456789012345678901234567"'),
    "usd exponent": _set(GOOD, "usd", '"1e5"'),
    "usd number": _set(GOOD, "usd", "5"),
    "control byte in a string": _set(GOOD, "reason", '"a\tb"'),
    "escape": _set(GOOD, "reason", '"a\\u0041"'),
    "non-ASCII": _set(GOOD, "reason", '"\u00e9"'),
    "two objects": GOOD + GOOD,
    "trailing comma": GOOD + b",",
    "trailing space": GOOD + b" ",
    "top-level array": b"[" + GOOD + b"]",
    "empty object": b"{}",
    "tombstone": None,
    # integers are read typed (Int128), whose reader is lenient: the payload guard must catch these
    "spaced quoted integer": _set(GOOD, "slot", ' "1007"'),
    "integer of 21 digits": _set(GOOD, "amount_raw", str(10**20)),
    "integer wrapping Int128": _set(GOOD, "amount_raw", str(2**128 + 5)),
    "null required integer": _set(GOOD, "slot", "null"),
    "leading zero after spaces": _set(GOOD, "leg", "  007"),
}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_anything_the_exact_path_must_judge_refuses_the_whole_payload(ch_client, ch_database, name):
    migrate(ch_client, ch_database)
    writer = Writer(ch_client, ch_database)
    values = [event(i).to_json() for i in range(20)]
    values.insert(10, REFUSED[name])
    assert not insert_json(writer, USAGE_FEES, values)
    assert ch_client.query(f"SELECT count() FROM {ch_database}.usage_fees").result_rows == [(0,)]
    del values[10]                              # control: the same payload without it goes through
    assert insert_json(writer, USAGE_FEES, values)
    assert ch_client.query(f"SELECT count() FROM {ch_database}.usage_fees").result_rows == [(20,)]


def test_messages_cannot_merge_across_the_row_separator(ch_client, ch_database):
    """A truncated message followed by the rest of a document must not parse as one row: the nonce
    markers pin every row to exactly one message."""
    migrate(ch_client, ch_database)
    writer = Writer(ch_client, ch_database)
    cut = GOOD.index(b'"reason"')
    head, tail = GOOD[:cut] + b'"reason":', b"{" + GOOD[GOOD.index(b'"rule_version"'):]
    assert not insert_json(writer, USAGE_FEES, [event(1).to_json(), head, tail, event(2).to_json()])
    assert ch_client.query(f"SELECT count() FROM {ch_database}.usage_fees").result_rows == [(0,)]


def test_a_slot_outside_the_hinted_ranges_refuses(ch_client, ch_database):
    """The reconcile ranges come from the raw bytes; the SQL checks them, so a wrong hint cannot leave
    a row outside the slot ranges reconciled after the insert."""
    migrate(ch_client, ch_database)
    writer = Writer(ch_client, ch_database)
    data = jsonflows.payload([event(i).to_json() for i in range(5)])
    assert not writer.insert_flow_json(USAGE_FEES, data, [(1000, 1003)])
    assert writer.insert_flow_json(USAGE_FEES, data, [(1000, 1002), (1003, 1004)])
    assert ch_client.query(f"SELECT count() FROM {ch_database}.usage_fees").result_rows == [(5,)]


def test_slot_hints_follow_the_groups():
    values = [event(i, slot=s).to_json() for i, s in enumerate((5, 9, 7, 100, 90))]
    data = jsonflows.payload(values)
    assert jsonflows.slot_hints(data, [3, 2]) == [(5, 9), (90, 100)]


def test_header_routing():
    assert header_table([("kind", b"flow"), ("flow_class", b"usage_fee")]) == USAGE_FEES.name
    assert header_table([("flow_class", b"emission")]) == EMISSIONS.name
    assert header_table([("flow_class", b"transfer")]) == OTHER_FLOWS.name
    assert header_table([("flow_class", b"gift")]) is None
    assert header_table([("kind", b"flow")]) is None
    assert header_table(None) is None


def test_value_routing():
    """The hot path routes by the flow_class key in the raw value; anything unusual: None (exact path)."""
    assert value_table(event(1).to_json()) == USAGE_FEES.name
    assert value_table(event(2, flow_class="emission").to_json()) == EMISSIONS.name
    assert value_table(event(3, flow_class="reversal").to_json()) == OTHER_FLOWS.name
    assert value_table(b'{"flow_class" : "usage_fee"}') is None        # not the listener's spelling
    assert value_table(b'{"flow_class":"gift"}') is None
    assert value_table(b'{"flow_class":"usage_fee') is None              # unterminated
    assert value_table(b'{"flow_class":1}') is None
    assert value_table(b"") is None
    assert value_table(None) is None


def test_route_flows_groups_like_value_table_per_message():
    values = [event(i, flow_class=("usage_fee", "emission", "transfer", "other")[i % 4]).to_json() for i in range(12)]
    values += [b'{"flow_class":"gift"}', b'{"flow_class":"usage_fee', b"", b"}", b'{"flow_class" : "emission"}',
               b'"flow_class":"emission"', b'{"x":1}', b'{"flow_class":"emission","flow_class":"usage_fee"}']
    recs = [f"r{i}" for i in range(len(values))]
    expected: dict = {}
    for r, v in zip(recs, values, strict=True):
        expected.setdefault(value_table(v), []).append(r)
    assert route_flows(recs, values) == expected
    assert set(expected) == {USAGE_FEES.name, EMISSIONS.name, OTHER_FLOWS.name, None}
    with_tombstone = [*values, None]
    assert route_flows([*recs, "t"], with_tombstone) == {**expected, None: [*expected[None], "t"]}


def test_sink_falls_back_for_a_refused_batch_with_poison_behind_flow_headers(sink_env):
    """Poison carrying a genuine `flow_class` header enters the ClickHouse JSON path, which refuses the
    batch; the exact path then dead-letters each poison message with its reason and writes the rest,
    including a valid event whose header names another table than its value."""
    flows = sink_env.topics.flows
    good = [event(i) for i in range(5)]
    misrouted = event(50, flow_class="emission", subtype="rewards_escrow")
    header = [("schema_version", b"v1"), ("kind", b"flow"), ("network", b"helium"), ("flow_class", b"usage_fee")]
    poison = {b"sig0000q": _set(event(60).to_json(), "slot", '"1060"'),     # quoted integer
              b"sig0000z": _set(event(61).to_json(), "slot", "01061"),      # invalid JSON for orjson
              b"sig0000t": b"{not json"}
    msgs = [flow_message(flows, e) for e in good[:3]]
    msgs.append(OutMessage(flows, misrouted.signature.encode(), misrouted.to_json(), header))
    msgs += [OutMessage(flows, key, value, header) for key, value in poison.items()]
    msgs += [flow_message(flows, e) for e in good[3:]]
    sink_env.publisher.send([OutMessage(m.topic, b"one-partition", m.value, m.headers) for m in msgs])

    stats = sink_env.sink("g").run_until_idle()
    assert stats.json_refused >= 1
    assert sink_env.q("SELECT flow_class, signature FROM {db}.flows ORDER BY signature") == \
        [("usage_fee", e.signature) for e in good] + [("emission", misrouted.signature)]
    dead = sink_env.q("SELECT stage, reason FROM {db}.dead_letters FINAL ORDER BY reason")
    assert dead == [("sink.parse", "invalid_field"), ("sink.parse", "invalid_json"), ("sink.parse", "invalid_json")]


def test_sink_parses_clean_flows_with_clickhouse(sink_env):
    evs = [event(i, flow_class=("usage_fee", "emission", "transfer")[i % 3]) for i in range(30)]
    sink_env.publisher.flows(evs)
    stats = sink_env.sink("g").run_until_idle()
    assert (stats.json_rows, stats.json_refused) == (30, 0)
    assert sink_env.q("SELECT count(), sum(amount_raw) FROM {db}.flows") == [(30, sum(e.amount_raw for e in evs))]
