"""Listener pieces without a chain: config precedence, message encoding, dead letters, progress, metrics."""

from __future__ import annotations

import base64

import pytest
from prometheus_client import generate_latest

from indexer.networks.events import FlowEvent
from indexer.sources.backfill import BackfillProgress
from indexer.sources.types import FetchedTx
from pipelines.kafka.messages import flow_message
from pipelines.kafka.topics import Topics
from pipelines.listen.config import ConfigError, ListenerConfig
from pipelines.listen.processor import KafkaProcessor, _flow_message
from pipelines.listen.progress import format_eta, render
from pipelines.listen.service import Listener


def test_config_precedence_file_env_flags(tmp_path):
    path = tmp_path / "listener.toml"
    path.write_text('[rpc]\nurl = "https://rpc.example/?api-key=k1"\nrate_limits = { "*" = 100, getTransaction = 40 }\n'
                    '[listen]\nnetworks = ["helium"]\nsince = "2026-03-01"\n'
                    '[kafka]\nbootstrap = "file:9092"\npartitions = 6\n'
                    '[sink]\nbatch_rows = 10\n[clickhouse]\ndsn = "chdb:///x"\n')
    env = {"DEPINFLOW_KAFKA_BOOTSTRAP": "env:9092", "SOLANA_WS_URL": "wss://ws.example/"}
    cfg = ListenerConfig.load(path, env=env, partitions=9)
    assert cfg.rpc_url == "https://rpc.example/?api-key=k1"
    assert cfg.rate_limits == {"*": 100, "getTransaction": 40}
    assert cfg.networks == ["helium"]
    assert cfg.since_ts == 1772323200
    assert cfg.bootstrap == "env:9092"            # env beats the file
    assert cfg.partitions == 9                    # flags beat env
    assert cfg.effective_ws_url == "wss://ws.example/"
    assert ListenerConfig.load(None, env={}, rpc_url="https://h.example/x").effective_ws_url == "wss://h.example/x"
    assert ListenerConfig.load(None, env={}, rate_limits="getTransaction=40,*=100").rate_limits == {
        "getTransaction": 40.0, "*": 100.0}


@pytest.mark.parametrize("bad", [dict(networks="helium,solana"), dict(since="2026-13-01"),
                                 dict(since="2026-03-01", from_slot=5), dict(progress="maybe"),
                                 dict(kafka_client="rdkafka"), dict(ws_stall_timeout=0),
                                 dict(ws_stall_timeout="-1")])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ConfigError):
        ListenerConfig.load(None, env={}, **bad)


def test_ws_stall_timeout_reaches_the_live_source(tmp_path):
    """File < environment < flag, and the value is what the websocket subscriber of the live source gets."""
    path = tmp_path / "listener.toml"
    path.write_text("[rpc]\nws_stall_timeout = 4.5\n")
    assert ListenerConfig.load(None, env={}).ws_stall_timeout == 10.0
    assert ListenerConfig.load(path, env={}).ws_stall_timeout == 4.5
    cfg = ListenerConfig.load(path, env={"DEPINFLOW_WS_STALL_TIMEOUT": "2.5"})
    assert cfg.ws_stall_timeout == 2.5
    assert ListenerConfig.load(path, env={"DEPINFLOW_WS_STALL_TIMEOUT": "2.5"}, ws_stall_timeout=7).ws_stall_timeout == 7
    assert Listener(cfg)._settings().live.ws_stall_timeout == 2.5


def test_unknown_listener_setting_in_file_is_an_error(tmp_path):
    path = tmp_path / "l.toml"
    path.write_text("[listen]\nsweep_intreval = 3\n")
    with pytest.raises(ConfigError, match="sweep_intreval"):
        ListenerConfig.load(path, env={})


def test_flow_message_bytes_and_headers_equal_the_shared_encoder():
    ev = FlowEvent(signature="5" * 88, ix_path="2.1", network="helium", flow_class="usage_fee",
                   subtype="data_transfer", slot=5, block_time=1_774_656_000, day="2026-03-28",
                   program_id="credMBJhYFzfn7NxBMdU4aUqFggAjgztaCcv2Fo6fPT", program="data_credits",
                   instruction="burn_delegated_data_credits_v0", mint="dcuc8Amr83Wz27ZkQ2K9NS6r8zRpf1J6cvArEBDZDmm",
                   symbol="DC", amount_raw=12345, decimals=0, usd="0.12345")
    ours, shared = _flow_message("t.flows.v1", ev), flow_message("t.flows.v1", ev)
    assert (ours.topic, ours.key, ours.value, ours.headers) == (shared.topic, shared.key, shared.value, shared.headers)


class _NullPublisher:
    def __init__(self):
        self.sent = []

    def submit(self, messages, event_ids, network=""):
        self.sent.append((messages, event_ids, network))
        return None


def test_unparseable_transaction_becomes_one_parse_dead_letter():
    pub = _NullPublisher()
    proc = KafkaProcessor(pub, Topics("t"))
    raw = b"\x01\x02not a transaction"
    tx = FetchedTx("3" * 88, 77, 1_774_656_000, "finalized",
                   {"slot": 77, "blockTime": 1_774_656_000, "transaction": [base64.b64encode(raw).decode(), "base64"],
                    "meta": {"err": None}}, "backfill")
    msgs, ids, network = proc.messages_for(tx)
    assert len(msgs) == 1 and msgs[0].topic == "t.deadletter.v1"
    assert ids == ["3" * 88 + "::parse"] and network == ""
    import orjson
    rec = orjson.loads(msgs[0].value)
    assert rec["stage"] == "parse" and rec["raw_hex"] == raw.hex() and rec["commitment"] == "finalized"
    assert rec["slot"] == 77 and rec["schema_version"] == "v1"
    assert sum(proc.stats.dead_letters.values()) == 1


def test_progress_line_and_eta():
    p = BackfillProgress(seam_slot=1000, target_slot=0, started=0.0)
    p.low_slot, p.txs = 750, 2500
    line = render(p, now=10.0)
    assert "25.0%" in line and "2,500 tx" in line and "250 tx/s" in line and "ETA 00:00:30" in line
    assert format_eta(3725) == "01:02:05" and format_eta(None) == "--:--:--"
    p.done = True
    assert "100.0%" in render(p, now=20.0)


def test_metrics_expose_the_listener_counters():
    listener = Listener(ListenerConfig(rpc_url="https://rpc.example/?api-key=secret", checkpoint="/tmp/x.json"))
    listener.rpc_stats.on_request({"getTransaction": 100}, 0.01)
    listener.rpc_stats.on_error("getTransaction", "http_429")
    listener.source_stats.txs["backfill"] += 100
    listener.source_stats.tip_slot, listener.source_stats.live_slot = 120, 100
    listener.process_stats.events[("helium", "usage_fee")] += 7
    listener.metrics.kafka_send_seconds.observe(0.004)
    text = generate_latest(listener.metrics.registry).decode()
    assert 'depinflow_listener_transactions_total{source="backfill"} 100.0' in text
    assert 'depinflow_listener_rpc_calls_total{method="getTransaction"} 100.0' in text
    assert 'depinflow_listener_rpc_errors_total{code="http_429",method="getTransaction"} 1.0' in text
    assert 'depinflow_listener_events_total{flow_class="usage_fee",network="helium"} 7.0' in text
    assert "depinflow_listener_slot_lag 20.0" in text
    assert "depinflow_listener_kafka_send_seconds_count 1.0" in text
    assert "secret" not in text


def test_addresses_follow_the_networks():
    helium_only = Listener(ListenerConfig(networks=["helium"], checkpoint="/tmp/x.json")).addresses()
    both = Listener(ListenerConfig(checkpoint="/tmp/x.json")).addresses()
    assert "rndrizKT3MK1iimdxRdWabcF7Zg7AR5T4nud4EkHBof" in both
    assert "rndrizKT3MK1iimdxRdWabcF7Zg7AR5T4nud4EkHBof" not in helium_only
    assert "credMBJhYFzfn7NxBMdU4aUqFggAjgztaCcv2Fo6fPT" in helium_only
    assert len(both) == len(set(both))


def test_metrics_http_endpoint_serves_the_registry():
    import urllib.request

    from infra.local.ports import free_port

    listener = Listener(ListenerConfig(checkpoint="/tmp/x.json"))
    listener.source_stats.txs["live"] += 3
    port = free_port()
    listener.metrics.serve(port)
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    finally:
        listener.metrics.close()
    assert 'depinflow_listener_transactions_total{source="live"} 3.0' in body


class _CollectingBatchPublisher:
    """publisher.batch() contract without a broker: records what process_batch sends."""

    def __init__(self):
        self.sent: list[tuple] = []
        self.sealed = 0

    def batch(self):
        pub = self

        class _Batch:
            def send(self, topic, value, key, headers):
                pub.sent.append((topic, key, value, list(headers)))

            def seal(self):
                pub.sealed += 1
                return "sealed"
        return _Batch()


def _simulated_txs(n: int = 400) -> list[FetchedTx]:
    from indexer.devchain import SimConfig, generate_ledger
    from indexer.devchain.render import get_transaction_result

    ledger = generate_ledger(SimConfig(seed=11, days=1, slots_per_day=300))
    out = []
    for block in ledger.blocks:
        for rec in block.transactions:
            res = get_transaction_result(rec, "base64", True)
            res["slot"], res["blockTime"] = block.slot, block.block_time
            out.append(FetchedTx(rec.signature, block.slot, block.block_time, "finalized", res, "backfill"))
    return out[:n]


def test_process_batch_sends_exactly_the_messages_of_messages_for_with_the_shared_encoders():
    """The backfill's batch path and the per-transaction path (live, fuzz) give the same bytes, keys,
    headers and topics, and both equal pipelines.kafka.messages' encoders."""
    from pipelines.kafka.messages import record_message

    txs = _simulated_txs()
    broken = FetchedTx("4" * 88, 9, 1_774_656_000, "finalized",
                       {"slot": 9, "transaction": ["!!not base64", "base64"], "meta": {}}, "backfill")
    txs.insert(7, broken)
    topics = Topics("t")
    one = KafkaProcessor(_NullPublisher(), topics)
    expected = []
    for tx in txs:
        msgs, ids, _ = one.messages_for(tx)
        expected.extend((m.topic, m.key, m.value, m.headers) for m in msgs)
        assert len(ids) == len(msgs)
    pub = _CollectingBatchPublisher()
    batched = KafkaProcessor(pub, topics)
    assert batched.process_batch(txs[:150]) == "sealed" and batched.process_batch(txs[150:]) == "sealed"
    assert pub.sent == expected and pub.sealed == 2
    kinds = {m[0] for m in expected}
    assert kinds == {"t.flows.v1", "t.instructions.v1", "t.deadletter.v1"}
    assert batched.stats.events == one.stats.events and sum(batched.stats.events.values()) > 50
    assert batched.stats.instructions == one.stats.instructions > 100
    assert batched.stats.txs["finalized"] == len(txs)
    # the shared encoders give the same message for every record and event
    import orjson
    for topic, key, value, headers in expected:
        rec = orjson.loads(value)
        if topic == "t.flows.v1":
            shared = flow_message(topic, FlowEvent(**rec))
        else:
            shared = record_message(topic, "instruction" if topic == "t.instructions.v1" else "deadletter", rec)
        assert (shared.key, shared.value, shared.headers) == (key, value, headers)


def test_tune_gc_raises_only_the_gen0_threshold_and_never_lowers_it():
    import gc

    from pipelines.listen.processor import GC_GEN0_THRESHOLD, restore_gc, tune_gc

    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 11, 12)
        before = tune_gc()
        assert before == (700, 11, 12)
        assert gc.get_threshold() == (GC_GEN0_THRESHOLD, 11, 12) == (50_000, 11, 12)
        assert tune_gc() is None                  # already tuned: nothing to undo
        assert gc.get_threshold() == (50_000, 11, 12)
        restore_gc(None)
        assert gc.get_threshold() == (50_000, 11, 12)
        restore_gc(before)
        assert gc.get_threshold() == (700, 11, 12)
        gc.set_threshold(200_000, 10, 10)
        assert tune_gc() is None
        assert gc.get_threshold() == (200_000, 10, 10)
    finally:
        gc.set_threshold(*saved)


def test_a_listener_run_leaves_the_gc_thresholds_as_it_found_them(tmp_path):
    """The listener tunes the collector for its own run only (a process may embed it, e.g. tests)."""
    import asyncio
    import gc

    saved = gc.get_threshold()
    seen = []
    try:
        gc.set_threshold(700, 10, 10)
        listener = Listener(ListenerConfig(rpc_url="http://127.0.0.1:9", bootstrap="127.0.0.1:9",
                                           checkpoint=str(tmp_path / "cp.json"), websocket=False))

        async def fake_run(stop, until_caught_up, require_final):
            seen.append(gc.get_threshold())
            raise RuntimeError("stop here")

        listener._arun = fake_run
        with pytest.raises(RuntimeError, match="stop here"):
            asyncio.run(listener.arun(None, until_caught_up=True))
        assert seen == [(50_000, 10, 10)]
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*saved)


def _probe_worker_start(queue) -> None:
    """Runs in a process forked by the backfill workers' fork server: what did it inherit?"""
    import gc

    from indexer.decode.registry import default_registry
    from indexer.networks.config import default_config

    queue.put((default_registry.cache_info().currsize, default_config.cache_info().currsize,
               gc.get_freeze_count() > 10_000))


def test_backfill_workers_are_forked_with_the_registry_built_and_the_servers_objects_frozen():
    from pipelines.listen.workers import worker_context

    ctx = worker_context()
    queue = ctx.Queue()
    proc = ctx.Process(target=_probe_worker_start, args=(queue,))
    proc.start()
    try:
        assert queue.get(timeout=120) == (1, 1, True)
    finally:
        proc.join(30)
    assert proc.exitcode == 0


_PREFORK_PROBE = """
import threading
from pipelines.listen.config import ListenerConfig
from pipelines.listen.service import Listener
from pipelines.listen.workers import prefork_context

listener = Listener(ListenerConfig(rpc_url="http://127.0.0.1:1", bootstrap="127.0.0.1:1", workers=2,
                                   checkpoint="{checkpoint}"))
assert threading.active_count() == 1
assert listener.prefork_workers() is True
pool = listener._pool
assert pool._ctx.get_start_method() == "fork" and len(pool._workers) == 2
assert all(proc.is_alive() for proc, _, _ in pool._workers)
assert listener.prefork_workers() is False          # once
procs = [proc for proc, _, _ in pool._workers]
pool.close(10)
assert [proc.exitcode for proc in procs] == [0, 0]
t = threading.Thread(target=threading.Event().wait, args=(5,), daemon=True)
t.start()
assert prefork_context() is None                    # a second thread: no plain fork
print("ok")
"""


def test_cli_listener_forks_its_backfill_workers_itself_while_single_threaded(tmp_path):
    """`depinflow listen --workers N` forks the workers from its own (still thread-free) process
    instead of starting a fork server (a second interpreter importing everything again)."""
    import subprocess
    import sys

    code = _PREFORK_PROBE.format(checkpoint=tmp_path / "cp.json")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "ok"


_ORPHAN_PROBE = """
import sys, time
from pipelines.listen.config import ListenerConfig
from pipelines.listen.service import Listener

listener = Listener(ListenerConfig(rpc_url="http://127.0.0.1:1", bootstrap="127.0.0.1:1", workers=2,
                                   checkpoint="{checkpoint}"))
assert listener.prefork_workers() is True
print(" ".join(str(proc.pid) for proc, _, _ in listener._pool._workers), flush=True)
time.sleep(120)
"""


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_preforked_workers_exit_when_the_listener_is_killed(tmp_path):
    """A kill -9 of `depinflow listen` must not leave its forked workers behind: each closes the
    parent's ends of the pipes it inherited, so the parent's death is an EOF to every worker."""
    import os
    import signal
    import subprocess
    import sys
    import time

    probe = subprocess.Popen([sys.executable, "-c", _ORPHAN_PROBE.format(checkpoint=tmp_path / "cp.json")],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    pids = [int(p) for p in probe.stdout.readline().split()]
    assert len(pids) == 2 and all(_running(p) for p in pids)
    time.sleep(1.0)                       # the workers are set up and waiting for chunks
    os.kill(probe.pid, signal.SIGKILL)
    probe.wait(10)
    deadline = time.monotonic() + 20
    while any(_running(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [p for p in pids if _running(p)]
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert left == []
