"""Live tail memory over a long input: every per-transaction structure stays bounded (issue 9).

A listener runs for months: nothing it keeps per transaction may outlive what correctness needs.
The dedup registry (`LiveTail.jobs`) keeps finished signatures only `dedup_slots` below the finalized
slot, and a finished job keeps no task or delivery receipt; the address queues, the finalizer's
pending map and the checkpoint's write-ahead `pending` map hold only unfinished work. The same run
checks that the guarantees the registry exists for still hold: each transaction published exactly
once although websocket hints and several addresses' sweeps name it, nothing missed, forks retracted.
"""

from __future__ import annotations

import asyncio
import random

from indexer.checkpoint import CheckpointStore
from indexer.rpc import RpcClient
from indexer.sources.live import BatchFetcher, Job, LiveTail
from indexer.sources.types import SourceStats
from tests.indexer.sources.minichain import ChainServer, MiniChain
from tests.indexer.sources.recorder import Recorder
from tests.indexer.sources.test_live import ADDRS, FAST, add_blocks, make_follower, wait_for

TX_PER_BLOCK = 3

DEDUP_SLOTS = 30
BLOCKS = 600


def _sizes(tail: LiveTail) -> dict[str, int]:
    return {"jobs": len(tail.jobs), "finalizer": len(tail.finalizer.pending),
            "checkpoint_pending": len(tail.cp.pending),
            "queued": sum(len(q) for q in tail.queues.values()),
            "queued_sets": sum(len(s) for s in tail.queued.values())}


def test_live_tail_structures_stay_bounded_over_a_long_chain(tmp_path):
    rng = random.Random(23)
    chain = MiniChain()
    add_blocks(chain, 20, rng)
    store = CheckpointStore(tmp_path / "cp.json")
    peaks: dict[str, int] = {}
    stale: list[Job] = []
    kept: set[str] = set()
    with ChainServer(chain) as server:
        rec = Recorder(ack_delay=0.001)
        f = make_follower(server, store, rec, ws=True, sweep_interval=0.05)
        f.s.live.dedup_slots = DEDUP_SLOTS

        async def main():
            task = asyncio.create_task(f.run())
            await wait_for(lambda: f.live is not None and f.stats.sweeps > 0)
            tail = f.live
            for i in range(BLOCKS):
                # every transaction watched, most by several addresses (listed several times)
                chain.add_block([tuple(rng.sample(ADDRS, rng.randint(1, len(ADDRS)))) for _ in range(TX_PER_BLOCK)],
                                forked=i % 13 == 12)
                await asyncio.sleep(0.002)
                if i % 10 == 9:   # a listener that keeps up (its lag is a window of slots, not the run)
                    await wait_for(lambda: (tail.stats.live_slot or 0) >= chain.confirmed - 15, timeout=30)
                for name, n in _sizes(tail).items():
                    peaks[name] = max(peaks.get(name, 0), n)
            chain.finalize_all()
            await tail.wait_caught_up(require_final=True)
            sweeps = f.stats.sweeps
            await wait_for(lambda: f.stats.sweeps >= sweeps + 2)
            await asyncio.sleep(0.2)                   # a few finalizer rounds (and evictions) after it
            floor = tail.finalizer.finalized_slot - DEDUP_SLOTS
            stale.extend(j for j in tail.jobs.values() if j.slot < floor)
            kept.update(tail.jobs)
            done = [j for j in tail.jobs.values() if j.done]
            assert done and all(j.task is None and j.delivery is None for j in done)
            end = _sizes(tail)
            f.stop.set()
            await task
            await f.rpc.close()
            return end

        end = asyncio.run(main())

    seam = f.cp.seam_slot
    canon = {s for s in chain.canonical(set(ADDRS)) if chain.by_sig[s][0].slot > seam}
    forked = {s for s in chain.forked_sigs() if set(chain.by_sig[s][1].addresses) & set(ADDRS)}
    live = rec.signatures("live")
    # the guarantees the registry exists for
    assert max(live.values()) == 1, "a transaction was published twice"
    assert set(live) - forked == canon, "a live transaction was missed"
    status = rec.status_of()
    assert forked and all(status[s] == "retracted" for s in forked if s in live)
    assert f.stats.dedup_hits["live"] > len(canon)   # hints and other addresses' sweeps named them again
    # bounded by windows of slots (dedup window + finality depth + processing lag), never the whole run
    assert len(canon) > 1500
    assert not stale, f"{len(stale)} finished jobs kept below the dedup window"
    print("peaks", peaks, "canonical live", len(canon), "kept at the end", len(kept))
    assert kept and len(kept) <= TX_PER_BLOCK * (DEDUP_SLOTS + 1)
    for name in ("jobs", "finalizer", "checkpoint_pending", "queued"):
        assert peaks[name] < len(canon) / 3, (name, peaks, len(canon))
    assert end["finalizer"] == end["checkpoint_pending"] == end["queued"] == end["queued_sets"] == 0, end


def test_fetcher_keeps_a_bounded_number_of_batches_in_flight():
    """A sweep that lists thousands of signatures at once (after a reconnect or a restart) must not
    send every getTransaction batch at once: each answered batch holds its parsed results until the
    CPU gets to them. At most `in_flight` batches are outstanding; every request is still answered."""
    chain = MiniChain()
    for _ in range(400):
        chain.add_block([("ProgA",), ("ProgB",), ("MintR",)])
    chain.finalize_all()
    sigs = list(chain.by_sig)
    with ChainServer(chain) as server:
        server.delay = 0.02

        async def main():
            rpc = RpcClient(server.url, retry=FAST)
            fetcher = BatchFetcher(rpc, 10, "base64", SourceStats(), asyncio.Event(), in_flight=4)
            runner = asyncio.create_task(fetcher.run())
            results = await asyncio.gather(*(fetcher.get(s) for s in sigs))
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            await rpc.close()
            return results

        results = asyncio.run(main())
    assert len(sigs) == 1200
    assert [r["transaction"][0] for r in results] == sigs
    assert server.requests >= len(sigs) // 10
    assert 1 <= server.max_in_flight <= 4, server.max_in_flight
