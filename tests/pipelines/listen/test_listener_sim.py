"""The listener end to end: chain simulator (real Solana JSON-RPC + websocket) -> Listener -> real broker.

Every test compares what landed on the flows topic (deduplicated by event_id, as the sink does) with
the simulator's ground truth, event by event and as truth totals.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from indexer.devchain import FaultConfig, SimConfig, generate_ledger, serve_in_thread
from pipelines.listen.config import ListenerConfig
from pipelines.listen.publisher import confluent_available
from pipelines.listen.service import Listener
from tests.pipelines.listen.simtruth import consume, expected, final_flows, listable, totals, values

CLIENTS = ["kafka-python"] + (["confluent"] if confluent_available() else [])


@pytest.fixture(scope="module")
def ledger():
    return generate_ledger(SimConfig(seed=7, days=1))


def config(node, bootstrap: str, prefix: str, tmp_path, **kw) -> ListenerConfig:
    base = dict(rpc_url=node.url, ws_url=node.ws_url, bootstrap=bootstrap, topic_prefix=prefix,
                checkpoint=str(tmp_path / f"{prefix}.json"), progress="off", sweep_interval=0.3,
                finalize_interval=0.1, checkpoint_interval=0.2)
    base.update(kw)
    return ListenerConfig(**base)


def assert_truth(ledger, bootstrap: str, prefix: str, mode: str = "addresses") -> tuple[dict, dict]:
    flows, status, _ = final_flows(bootstrap, prefix)
    retracted = {eid for eid, ev in flows.items() if status.get(ev["signature"]) == "retracted"}
    live = {eid: ev for eid, ev in flows.items() if eid not in retracted}
    want = expected(ledger, mode=mode)
    assert set(live) == set(want)
    assert totals(live.values()) == totals(want.values())
    for eid, ev in want.items():
        assert int(live[eid]["amount_raw"]) == ev["amount_raw"], eid
    return flows, status


@pytest.mark.parametrize("client", CLIENTS)
def test_backfill_of_a_simulated_day_publishes_exactly_the_truth(ledger, bootstrap, unique_name, tmp_path, client):
    prefix = unique_name("lb")
    with serve_in_thread(ledger) as node:
        listener = Listener(config(node, bootstrap, prefix, tmp_path, websocket=False, page_limit=300,
                                   kafka_client=client))
        summary = listener.run_until_caught_up(timeout=300)
    flows, status = assert_truth(ledger, bootstrap, prefix)
    assert all(ev["commitment"] == "finalized" for ev in flows.values())   # below the seam: final
    assert status == {}
    assert summary.dead_letters == 0
    assert listener.kafka_client == client
    if client == "confluent":   # the backfill published through its own producer (longer linger)
        assert listener.processor.batch_publisher not in (None, listener.processor.publisher)
        assert listener.processor.batch_publisher.messages > 0
    assert listener.source_stats.dedup_hits["backfill"] > 0                  # multi-address txs, once
    # the truth covers every day/class line the listener can see; the invisible ones are plain
    # RENDER Transfers that name no watched account (address listening cannot find them)
    missing = {e["event_id"] for e in ledger.expected_events() if not e["forked"]} - set(flows)
    assert all(not listable(ledger, eid.split(":")[0]) for eid in missing)
    instructions = values(consume(bootstrap, f"{prefix}.instructions.v1"))
    assert instructions and all(r["commitment"] == "finalized" for r in instructions)
    # checkpoint: done and durable; the seam is the simulator's finalized tip
    cp = listener.follower.store.load()
    assert cp.backfill_done and cp.seam_slot == ledger.last_slot


def test_backfill_in_worker_processes_publishes_the_truth(ledger, bootstrap, unique_name, tmp_path):
    prefix = unique_name("lp")
    with serve_in_thread(ledger) as node:
        listener = Listener(config(node, bootstrap, prefix, tmp_path, websocket=False, workers=2, rpc_batch=50))
        summary = listener.run_until_caught_up(timeout=300)
    assert_truth(ledger, bootstrap, prefix)
    assert summary.transactions == listener.source_stats.txs["backfill"] > 0
    assert summary.events == len(expected(ledger)) and summary.dead_letters == 0   # worker counters merged
    assert listener.follower.store.load().backfill_done


def test_block_mode_backfill_publishes_the_whole_truth(ledger, bootstrap, unique_name, tmp_path):
    """Walking blocks also finds the plain RENDER Transfers that address listening cannot see."""
    prefix = unique_name("lw")
    with serve_in_thread(ledger) as node:
        listener = Listener(config(node, bootstrap, prefix, tmp_path, websocket=False, mode="blocks",
                                   from_slot=ledger.first_slot))
        listener.run_until_caught_up(timeout=300)
    flows, status = assert_truth(ledger, bootstrap, prefix, mode="blocks")
    truth = {(t["network"], t["day"], t["flow_class"], t["subtype"], t["mint"]): t["amount_raw"]
             for t in ledger.truth_lines()}
    assert totals(flows.values()) == truth                                 # line by line, every line
    assert any(not listable(ledger, ev["signature"]) for ev in flows.values())
    assert status == {} and all(ev["commitment"] == "finalized" for ev in flows.values())
    assert listener.follower.store.load().block_slot == ledger.last_slot


def _run_live(ledger, bootstrap, prefix, tmp_path, *, faults=None, start_at: int, steps: int, step: int,
              pause: float = 0.05, mode: str = "addresses"):
    """Serve `ledger` from block position `start_at`, follow it while advancing, finalize, catch up."""
    with serve_in_thread(ledger, faults=faults, start_at=start_at) as node:
        extra = {"mode": "blocks", "from_slot": ledger.first_slot} if mode == "blocks" else {}
        listener = Listener(config(node, bootstrap, prefix, tmp_path, **extra))

        async def main():
            stop = asyncio.Event()
            task = asyncio.create_task(listener.arun(stop))
            while listener.follower is None or (listener.follower.live is None and listener.follower.walker is None):
                await asyncio.sleep(0.05)
                if task.done():
                    await task
            for _ in range(steps):
                node.advance(step)
                await asyncio.sleep(pause)
            follower = listener.follower
            try:
                await asyncio.wait_for(follower.wait_caught_up(require_final=False), 120)
                node.finalize_all()
                await asyncio.wait_for(follower.wait_caught_up(require_final=True), 120)
            except TimeoutError:
                live = follower.live
                stuck = [(j.signature, j.slot, j.acked, j.status) for j in live.jobs.values() if not j.done] if live else []
                raise AssertionError(f"not caught up: stuck={stuck[:5]} cp={follower.cp.to_dict()} "
                                     f"stats={listener.source_stats}") from None
            finally:
                stop.set()
            return await task
        summary = asyncio.run(asyncio.wait_for(main(), 600))
    return listener, summary


@pytest.mark.parametrize("mode", ["addresses", "blocks"])
def test_live_mode_publishes_new_slots_and_retracts_forks(ledger, bootstrap, unique_name, tmp_path, mode):
    prefix = unique_name("ll")
    start = len(ledger.blocks) - 700          # the last 700 blocks arrive while the listener runs
    listener, summary = _run_live(ledger, bootstrap, prefix, tmp_path, start_at=start, steps=70, step=10,
                                  pause=0.1, mode=mode)
    flows, status = assert_truth(ledger, bootstrap, prefix, mode)
    seam = ledger.blocks[start - 33].slot    # the finalized tip when the listener started
    live_ids = {eid for eid, ev in flows.items() if ev["slot"] > seam}
    assert len(live_ids) > 300
    forked = expected(ledger, include_forked=True, min_slot=seam + 1, mode=mode)
    forked = {eid: ev for eid, ev in forked.items() if ev["forked"]}
    assert forked, "the scenario must contain forked events after the seam"
    # A forked block is visible for ~32 blocks; what the listener saw of it at confirmed is retracted
    # (a fork that vanished before it was fetched needs nothing).
    seen = [ev for eid, ev in forked.items() if eid in flows]
    assert seen, "no forked event was observed at confirmed"
    assert all(status[ev["signature"]] == "retracted" for ev in seen)
    confirmed_sigs = {ev["signature"] for ev in flows.values() if ev["commitment"] == "confirmed"}
    assert confirmed_sigs and all(sig in status for sig in confirmed_sigs)  # every confirmed tx resolved
    assert summary.statuses >= len(confirmed_sigs)


def test_faults_do_not_change_what_is_published(ledger, bootstrap, unique_name, tmp_path):
    prefix = unique_name("lf")
    faults = FaultConfig.from_dict({
        "seed": 5,
        "methods": {"*": {"http_429": 0.05, "retry_after": 0, "http_5xx": 0.04, "reset": 0.03,
                          "truncate": 0.03, "malformed": 0.03, "node_unhealthy": 0.02,
                          "latency_ms": 30, "latency_rate": 0.05}},
        "websocket": {"drop_rate": 0.02, "stall_rate": 0.01, "stall_seconds": 3},
    })
    start = len(ledger.blocks) - 400
    listener, _ = _run_live(ledger, bootstrap, prefix, tmp_path, faults=faults, start_at=start, steps=20, step=20)
    assert_truth(ledger, bootstrap, prefix)
    errors = listener.rpc_stats.errors
    codes = {code for (_, code) in errors}
    assert {"http_429", "http_503", "transport", "-32005"} <= codes, codes
    assert listener.rpc_stats.total_retries() > 20


def test_restart_continues_without_gap(ledger, bootstrap, unique_name, tmp_path):
    prefix = unique_name("lr")
    start = len(ledger.blocks) - 300
    with serve_in_thread(ledger, start_at=start) as node:
        for _ in range(2):
            listener = Listener(config(node, bootstrap, prefix, tmp_path))

            async def part(listener=listener):
                stop = asyncio.Event()
                task = asyncio.create_task(listener.arun(stop))
                t0 = time.monotonic()
                while listener.follower is None or listener.follower.live is None:
                    await asyncio.sleep(0.05)
                node.advance(60)
                await asyncio.sleep(max(0.0, 1.5 - (time.monotonic() - t0)))
                stop.set()
                await task
            asyncio.run(part())
        node.finalize_all()
        Listener(config(node, bootstrap, prefix, tmp_path)).run_until_caught_up(timeout=300)
    assert_truth(ledger, bootstrap, prefix)
