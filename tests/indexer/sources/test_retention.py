"""A node's ledger retention must not pass for a fork (issue 9): an unknown signature whose slot the
node no longer holds fails the live tail loudly instead of being dropped (fetch) or retracted (finalizer)."""

from __future__ import annotations

import asyncio

import pytest

from indexer.checkpoint import Checkpoint
from indexer.rpc import RetryPolicy, RpcClient
from indexer.sources.finalizer import Finalizer, PrunedError
from indexer.sources.live import Job, LiveSettings, LiveTail
from indexer.sources.types import Delivery, SigInfo, SourceStats
from tests.indexer.sources.minichain import ChainServer, MiniChain
from tests.indexer.sources.recorder import Recorder

FAST = RetryPolicy(attempts=6, base_delay=0.001, max_delay=0.02)


def _chain() -> tuple[MiniChain, str, str]:
    """A canonical transaction at slot 1000, a forked one at 1001, and more blocks on top."""
    chain = MiniChain()
    canon = chain.add_block([("ProgA",)]).txs[0].signature
    forked = chain.add_block([("ProgA",)], forked=True).txs[0].signature
    for _ in range(40):
        chain.add_block([("Noise",)])
    return chain, canon, forked


async def _fetch(server: ChainServer, sig: str, slot: int) -> dict | None:
    rpc = RpcClient(server.url, retry=FAST)
    stop = asyncio.Event()
    tail = LiveTail(rpc, Recorder(), Checkpoint(seam_slot=999), ["ProgA"],
                    LiveSettings(missing_fast_retries=2), SourceStats(), stop)
    fetcher = asyncio.create_task(tail.fetcher.run())
    try:
        return await tail._fetch(Job(SigInfo(sig, slot, None, None, "confirmed"), asyncio.Event()))
    finally:
        fetcher.cancel()
        await asyncio.gather(fetcher, return_exceptions=True)
        await rpc.close()


def test_live_fetch_of_a_purged_canonical_transaction_fails_instead_of_dropping_it():
    chain, canon, forked = _chain()
    with ChainServer(chain) as server:
        assert asyncio.run(_fetch(server, forked, 1001)) is None        # a fork the node still knows: gone
        chain.purge_below(1001)
        with pytest.raises(PrunedError, match="slot 1000"):              # purged: cannot tell, so loud
            asyncio.run(_fetch(server, canon, 1000))
        assert asyncio.run(_fetch(server, forked, 1001)) is None        # at/above the first available block


def test_finalizer_does_not_retract_a_purged_canonical_transaction():
    chain, canon, forked = _chain()

    async def run(sigs: list[tuple[str, int]]) -> tuple[Recorder, Finalizer]:
        rpc = RpcClient(server.url, retry=FAST)
        rec = Recorder()
        fin = Finalizer(rpc, rec, SourceStats(), asyncio.Event())
        loop = asyncio.get_running_loop()
        for sig, slot in sigs:
            done = loop.create_future()
            done.set_result(None)
            asyncio.ensure_future(fin.resolve(sig, slot, None, Delivery(done, [f"{sig}:0"], 1, "helium")))
        await asyncio.sleep(0)
        try:
            await fin.round()
        finally:
            await rpc.close()
        return rec, fin

    with ChainServer(chain) as server:
        chain.purge_below(1001)
        with pytest.raises(PrunedError, match="slot 1000"):
            asyncio.run(run([(canon, 1000)]))
        rec, fin = asyncio.run(run([(forked, 1001)]))                   # a fork is still retracted
        assert rec.status_of()[forked] == "retracted"
        assert fin.stats.statuses["retracted"] == 1


def test_a_vanished_job_listed_again_at_the_same_slot_is_fetched_again():
    """A signature declared vanished (the node answered null) but listed again by a sweep at the same
    slot gets a new job: reusing the finished one would never fetch it (issue 9)."""
    chain, canon, _forked = _chain()

    async def main():
        with ChainServer(chain) as server:
            rpc = RpcClient(server.url, retry=FAST)
            tail = LiveTail(rpc, Recorder(), Checkpoint(seam_slot=999), ["ProgA"], LiveSettings(), SourceStats(),
                            asyncio.Event())
            old = Job(SigInfo(canon, 1000, None, None, "confirmed"), asyncio.Event())
            old.outcome = "vanished"
            old.finished.set()
            tail.jobs[canon] = old
            again = tail._job(SigInfo(canon, 1000, None, None, "confirmed"))
            assert again is not old and not again.done and tail.jobs[canon] is again
            finalized = Job(SigInfo("other", 1000, None, None, "confirmed"), asyncio.Event())
            finalized.outcome = "finalized"
            finalized.finished.set()
            tail.jobs["other"] = finalized
            assert tail._job(SigInfo("other", 1000, None, None, "confirmed")) is finalized   # still deduplicated
            again.task.cancel()
            await asyncio.gather(again.task, return_exceptions=True)
            await rpc.close()

    asyncio.run(main())
