"""Crashes, replays, out-of-order statuses, retractions, poison messages and ClickHouse outages,
against the real broker and the real ClickHouse engine."""

from __future__ import annotations

import threading
import time
from decimal import Decimal

from clickhouse_connect.driver.exceptions import OperationalError
from kafka import KafkaConsumer, TopicPartition

from indexer.networks.events import FlowEvent
from pipelines.sink import Sink, totals
from tests.pipelines.sink.helpers import flow_events, instruction_record, ledger, status_record

HNT = "hntyVP6YFm1Hg25TN9WGLqM12b8TQmcknKrdu1oxWux"
DC = "dcuc8Amr83Wz27ZkQ2K9NS6r8zRpf1J6cvArEBDZDmm"


def event(sig: str, path: str = "1", *, flow_class: str = "usage_fee", subtype: str = "data_transfer",
          amount: int = 1000, slot: int = 100, day: str = "2026-03-28", mint: str = DC, symbol: str = "DC",
          decimals: int = 0, **kw) -> FlowEvent:
    return FlowEvent(signature=sig, ix_path=path, network="helium", flow_class=flow_class, subtype=subtype,
                     slot=slot, block_time=1774656000 + slot, day=day, program_id="p", program="helium",
                     instruction="i", mint=mint, symbol=symbol, amount_raw=amount, decimals=decimals, **kw)


def committed(env, group: str, topic: str) -> int | None:
    """Sum of the group's committed offsets over the topic's partitions (None: nothing committed)."""
    c = KafkaConsumer(bootstrap_servers=env.bootstrap, group_id=group, enable_auto_commit=False)
    try:
        offs = [c.committed(TopicPartition(topic, p)) for p in sorted(c.partitions_for_topic(topic))]
    finally:
        c.close()
    return None if all(o is None for o in offs) else sum(o or 0 for o in offs)


def wait_for(cond, timeout: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_status_before_its_flow_still_applies(sink_env):
    pub = sink_env.publisher
    gone, kept, back = event("sigGone", amount=7), event("sigKept", amount=11), event("sigBack", amount=13)
    pub.statuses([status_record("sigGone", 100, "retracted", [gone.event_id]),
                  status_record("sigKept", 100, "finalized", [kept.event_id]),
                  status_record("sigBack", 100, "retracted", [back.event_id])])
    sink_env.sink("g").run_until_idle()
    assert sink_env.q("SELECT count() FROM {db}.flows") == [(0,)]

    # the flows arrive later; sigBack's transaction was re-included in a later slot after the fork
    reincluded = event("sigBack", amount=13, slot=150)
    pub.flows([gone, kept, back, reincluded])
    sink_env.sink("g").run_until_idle()
    rows = sink_env.q("SELECT signature, slot, commitment, amount_raw FROM {db}.flows ORDER BY signature")
    assert rows == [("sigBack", 150, "confirmed", 13), ("sigKept", 100, "finalized", 11)]
    assert totals(sink_env.client, sink_env.database) == [
        {"network": "helium", "day": "2026-03-28", "flow_class": "usage_fee", "subtype": "data_transfer",
         "mint": DC, "amount_raw": 24}]


class CrashBeforeCommit(Exception):
    pass


class CrashingSink(Sink):
    """Dies after ClickHouse acknowledged the batch and before the offsets are committed."""

    def _commit(self, offsets):
        self._batch = type(self._batch)()   # process memory is gone with the crash
        raise CrashBeforeCommit()


def test_crash_between_insert_and_commit_leaves_no_visible_duplicate(sink_env):
    events = flow_events(ledger())[:600]
    sink_env.publisher.flows([e for e, _ in events])
    crashing = CrashingSink(sink_env.config("g", batch_rows=100_000, batch_seconds=5))
    try:
        crashing.run_until_idle()
        raise AssertionError("the sink should have crashed")
    except CrashBeforeCommit:
        pass
    finally:
        crashing.close()
    flows = sink_env.topics.flows
    assert committed(sink_env, "g", flows) is None
    first = totals(sink_env.client, sink_env.database)

    # restart: the same group re-reads everything (nothing was committed) and inserts it again
    stats = sink_env.sink("g").run_until_idle()
    assert stats.messages == len(events)
    assert committed(sink_env, "g", flows) == len(events)
    stored = sink_env.q("SELECT count() FROM {db}.usage_fees") [0][0] + \
        sink_env.q("SELECT count() FROM {db}.emissions")[0][0] + sink_env.q("SELECT count() FROM {db}.other_flows")[0][0]
    assert stored >= len(events)          # the duplicates physically exist (unless merged) ...
    assert sink_env.q("SELECT count(), uniqExact(event_id) FROM {db}.flows") == [(len(events), len(events))]
    assert totals(sink_env.client, sink_env.database) == first   # ... and are never visible


def test_retraction_removes_the_event_from_every_view(sink_env):
    pub = sink_env.publisher
    fee = event("sigFee", amount=500_000)          # 5 USD of DC at the peg
    other = event("sigOther", amount=200_000)
    emission = event("sigEm", "0", flow_class="emission", subtype="rewards_escrow", mint=HNT, symbol="HNT",
                     decimals=8, amount=300_000_000, leg=0)
    pub.flows([fee, other, emission])
    pub.instructions([instruction_record(fee), instruction_record(other)])
    sink_env.sink("g").run_until_idle()
    sink_env.client.command(f"INSERT INTO {sink_env.database}.prices (token, day, usd) VALUES ('HNT', '2026-03-28', 2.5)")
    inv = "SELECT usage_usd, emission_usd, usage_usd_by_subtype FROM {db}.invoice_daily"
    assert sink_env.q(inv) == [(Decimal("7"), Decimal("7.5"), {"data_transfer": Decimal("7")})]

    pub.statuses([status_record("sigFee", 100, "retracted", [fee.event_id])])
    sink_env.sink("g").run_until_idle()
    assert sink_env.q(inv) == [(Decimal("2"), Decimal("7.5"), {"data_transfer": Decimal("2")})]
    assert sink_env.q("SELECT signature FROM {db}.flows ORDER BY signature") == [("sigEm",), ("sigOther",)]
    assert sink_env.q("SELECT count() FROM {db}.usage_fees FINAL WHERE signature = 'sigFee'") == [(0,)]
    assert sink_env.q("SELECT signature FROM {db}.instructions FINAL") == [("sigOther",)]
    assert sink_env.q("SELECT amount_raw, events FROM {db}.usage_fees_daily") == [(200_000, 1)]
    assert [t["amount_raw"] for t in totals(sink_env.client, sink_env.database)] == [300_000_000, 200_000]
    # the retraction is a newer row version, not a mutation: the old rows are still on disk
    assert sink_env.q("SELECT is_deleted, commitment FROM {db}.usage_fees FINAL WHERE signature = 'sigFee' "
                      "SETTINGS do_not_merge_across_partitions_select_final = 0") == []
    assert sink_env.q("SELECT max(is_deleted), max(version) FROM {db}.usage_fees WHERE signature = 'sigFee'") == \
        [(1, 100 * 4 + 3)]


def test_poison_messages_become_dead_letters_while_the_rest_flows(sink_env):
    pub = sink_env.publisher
    flows = sink_env.topics.flows
    good = [event(f"sigGood{i}", amount=i + 1) for i in range(3)]
    bad_amount = event("sigBadAmount").to_dict() | {"amount_raw": "lots"}
    bad_class = event("sigBadClass").to_dict() | {"flow_class": "gift"}
    bad_id = event("sigBadId").to_dict() | {"event_id": "someone-else:1"}
    too_rich = event("sigTooRich").to_dict() | {"usd": "1e40"}     # parses, but ClickHouse refuses it
    import orjson
    for value in (good[0].to_json(), b"\x00not json", orjson.dumps(bad_amount), good[1].to_json(),
                  b"[1, 2]", orjson.dumps(bad_class), orjson.dumps(bad_id), orjson.dumps(too_rich), None,
                  good[2].to_json()):
        pub.raw(flows, value, partition=0)
    pub.raw(sink_env.topics.status, b"{\"signature\": 1}", partition=1)
    pub.deadletters([{"signature": "sigUp", "slot": 5, "ix_path": "2", "program_id": "p", "stage": "decode",
                      "reason": "unknown discriminator", "detail": "", "raw_hex": "abcd", "block_time": 1774656000}])

    sink = sink_env.sink("g")
    stats = sink.run_until_idle()
    assert stats.messages == 12
    assert sink_env.q("SELECT signature, amount_raw FROM {db}.flows ORDER BY signature") == \
        [("sigGood0", 1), ("sigGood1", 2), ("sigGood2", 3)]
    dead = sink_env.q("SELECT source, stage, reason, topic, partition, offset FROM {db}.dead_letters FINAL "
                      "ORDER BY topic, offset")
    assert [(d[0], d[1], d[2]) for d in dead] == [
        ("upstream", "decode", "unknown discriminator"),
        ("sink", "sink.parse", "invalid_json"),
        ("sink", "sink.parse", "invalid_field"),
        ("sink", "sink.parse", "not_an_object"),
        ("sink", "sink.parse", "unknown_flow_class"),
        ("sink", "sink.parse", "event_id_mismatch"),
        ("sink", "sink.insert", "insert_failed"),
        ("sink", "sink.parse", "empty_value"),
        ("sink", "sink.parse", "invalid_field"),
    ]
    assert [d[5] for d in dead if d[3] == flows] == [1, 2, 4, 5, 6, 7, 8]
    raw = sink_env.q("SELECT raw_hex FROM {db}.dead_letters FINAL WHERE offset = 1 AND source = 'sink'")
    assert bytes.fromhex(raw[0][0]) == b"\x00not json"
    assert committed(sink_env, "g", flows) == 10       # the partition moved on past every poison message
    reg = sink.metrics.registry
    assert reg.get_sample_value("depinflow_sink_dead_letters_total",
                                {"stage": "sink.insert", "reason": "insert_failed"}) == 1
    assert reg.get_sample_value("depinflow_sink_insert_errors_total", {"table": "usage_fees", "kind": "row"}) == 1
    assert reg.get_sample_value("depinflow_sink_rows_total", {"table": "usage_fees"}) == 3
    # lag per partition = high watermark - committed offset; the sink drained everything
    assert reg.get_sample_value("depinflow_sink_committed_offset", {"topic": flows, "partition": "0"}) == 10
    assert reg.get_sample_value("depinflow_sink_consumer_lag", {"topic": flows, "partition": "0"}) == 0


class Outage:
    """A real ClickHouse client behind a switch: while `down`, every call fails like a refused
    connection does (fault injection; the engine and the client are the real ones)."""

    def __init__(self, client) -> None:
        self._client = client
        self.down = False
        self.calls_while_down = 0

    def _guard(self):
        if self.down:
            self.calls_while_down += 1
            raise OperationalError("Error HTTPConnectionPool: Connection refused (injected outage)")

    def insert(self, *a, **kw):
        self._guard()
        return self._client.insert(*a, **kw)

    def command(self, *a, **kw):
        self._guard()
        return self._client.command(*a, **kw)

    def query(self, *a, **kw):
        self._guard()
        return self._client.query(*a, **kw)


def test_clickhouse_outage_retries_with_backoff_and_commits_nothing(sink_env):
    pub = sink_env.publisher
    flows = sink_env.topics.flows
    outage = Outage(sink_env.client)
    sink = Sink(sink_env.config("g"), client=outage)
    stop = threading.Event()
    runner = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    runner.start()
    try:
        pub.flows([event("sigA", amount=1)])
        wait_for(lambda: committed(sink_env, "g", flows) == 1, what="first batch committed")
        outage.down = True
        pub.flows([event("sigB", amount=2), event("sigC", amount=3)])
        wait_for(lambda: sink.stats.retries >= 4, what="retries during the outage")
        assert committed(sink_env, "g", flows) == 1       # nothing committed while ClickHouse is down
        assert sink_env.q("SELECT count() FROM {db}.flows") == [(1,)]
        outage.down = False
        wait_for(lambda: committed(sink_env, "g", flows) == 3, what="commit after recovery")
        assert sink_env.q("SELECT signature FROM {db}.flows ORDER BY signature") == [("sigA",), ("sigB",), ("sigC",)]
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    assert outage.calls_while_down >= 4


def test_unreachable_http_clickhouse_is_retried_and_nothing_is_committed(sink_env):
    from infra.local.ports import free_port

    sink_env.publisher.flows([event("sigA")])
    sink = sink_env.sink("g", clickhouse_dsn=f"http://default:secret@127.0.0.1:{free_port('127.0.0.1')}")
    stop = threading.Event()
    runner = threading.Thread(target=sink.run, args=(stop,), daemon=True)
    runner.start()
    wait_for(lambda: sink.stats.retries >= 3, what="connection retries")
    stop.set()
    runner.join(30)
    assert not runner.is_alive()
    assert committed(sink_env, "g", sink_env.topics.flows) is None
