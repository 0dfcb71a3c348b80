"""Live tail over a scripted chain: seam, sweeps, websocket hints, forks, finality, restart, faults."""

from __future__ import annotations

import asyncio
import random
import time

from indexer.checkpoint import CheckpointStore
from indexer.rpc import RetryPolicy, RpcClient, RpcStats
from indexer.sources.backfill import BackfillSettings
from indexer.sources.follower import Follower, FollowerSettings
from indexer.sources.live import LiveSettings
from tests.indexer.sources.minichain import ChainServer, Faults, MiniChain
from tests.indexer.sources.recorder import Recorder

ADDRS = ["ProgA", "ProgB", "MintR"]
FAST = RetryPolicy(attempts=6, base_delay=0.001, max_delay=0.02)


def make_follower(server: ChainServer, store: CheckpointStore | None, rec: Recorder, *, ws: bool = False,
                  sweep_interval: float = 0.1, page_limit: int = 1000) -> Follower:
    settings = FollowerSettings(
        addresses=list(ADDRS),
        backfill=BackfillSettings(page_limit=page_limit, fetch_batch=10),
        live=LiveSettings(page_limit=page_limit, sweep_interval=sweep_interval, finalize_interval=0.05,
                          ws_url=server.ws_url if ws else None, ws_stall_timeout=5.0),
        checkpoint_interval=0.05)
    return Follower(RpcClient(server.url, retry=FAST), rec, store, settings)


def add_blocks(chain: MiniChain, n: int, rng: random.Random, fork_every: int = 0) -> None:
    for i in range(n):
        txs = [tuple(a for a in ADDRS + ["Noise"] if rng.random() < 0.4) or ("Noise",)
               for _ in range(rng.randint(0, 3))]
        chain.add_block(txs, forked=bool(fork_every) and i % fork_every == fork_every - 1)


async def wait_for(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        await asyncio.sleep(0.01)


def test_live_covers_everything_after_the_seam_and_retracts_forks(tmp_path):
    rng = random.Random(11)
    chain = MiniChain()
    add_blocks(chain, 80, rng)
    store = CheckpointStore(tmp_path / "cp.json")
    with ChainServer(chain) as server:
        rec = Recorder(ack_delay=0.002)
        f = make_follower(server, store, rec, page_limit=5)

        async def main():
            task = asyncio.create_task(f.run())
            await wait_for(lambda: f.live is not None and f.stats.sweeps > 0)
            chain.hold_finality = True
            add_blocks(chain, 60, rng, fork_every=7)
            await f.live.wait_caught_up(require_final=False)   # forks listed while still confirmed
            chain.finalize_all()
            await f.live.wait_caught_up(require_final=True)
            f.stop.set()
            await task
            await f.rpc.close()
        asyncio.run(main())

    seam = f.cp.seam_slot
    canon = chain.canonical(set(ADDRS))
    forked = {s for s in chain.forked_sigs() if set(chain.by_sig[s][1].addresses) & set(ADDRS)}
    assert forked, "the scenario must contain forked transactions"
    got = rec.signatures()
    assert max(got.values()) == 1
    assert set(rec.signatures("backfill")) == {s for s in canon if chain.by_sig[s][0].slot <= seam}
    live = set(rec.signatures("live"))
    assert live - forked == {s for s in canon if chain.by_sig[s][0].slot > seam}
    assert forked <= live                                  # published at confirmed ...
    status = rec.status_of()
    assert all(status[s] == "retracted" for s in forked)   # ... and retracted
    confirmed_live = {t.signature for t in rec.txs if t.source == "live" and t.commitment == "confirmed"}
    assert {s for s, st in status.items() if st == "finalized"} == confirmed_live - forked
    assert all(r["event_ids"] == [f"{r['signature']}:0"] and r["schema_version"] == "v1" for r in rec.statuses)
    # durable watermark: each address's newest canonical signature
    cp = store.load()
    for addr in ADDRS:
        newest = max((s for s in chain.canonical({addr})), key=lambda s: (chain.by_sig[s][0].slot,
                                                                           chain.by_sig[s][0].txs.index(chain.by_sig[s][1])))
        assert cp.addresses[addr].live.sig == newest


def test_websocket_hints_process_before_the_next_sweep(tmp_path):
    rng = random.Random(5)
    chain = MiniChain()
    add_blocks(chain, 40, rng)
    with ChainServer(chain) as server:
        rec = Recorder()
        f = make_follower(server, None, rec, ws=True, sweep_interval=60.0)

        async def main():
            task = asyncio.create_task(f.run())
            await wait_for(lambda: f.live is not None and f.stats.sweeps >= 1 and f.stats.tip_slot > 0)
            await asyncio.sleep(0.3)  # websocket subscribed
            sweeps = f.stats.sweeps
            chain.add_block([("ProgA",), ("ProgB", "MintR"), ("Noise",)])
            block = chain.blocks[-1]
            wanted = {t.signature for t in block.txs if set(t.addresses) & set(ADDRS)}
            t0 = time.monotonic()
            await wait_for(lambda: wanted <= set(rec.signatures("live")), timeout=5.0)
            latency = time.monotonic() - t0
            assert f.stats.sweeps == sweeps     # found by the hints, not by a sweep
            assert f.stats.hints >= 3           # one per (address, tx) mention
            assert latency < 1.0
            assert max(rec.signatures().values()) == 1
            f.stop.set()
            await task
            await f.rpc.close()
        asyncio.run(main())


def test_dropped_websocket_triggers_a_sweep_and_nothing_is_missed(tmp_path):
    rng = random.Random(8)
    chain = MiniChain()
    add_blocks(chain, 30, rng)
    with ChainServer(chain) as server:
        rec = Recorder()
        f = make_follower(server, None, rec, ws=True, sweep_interval=60.0)

        async def main():
            task = asyncio.create_task(f.run())
            await wait_for(lambda: f.live is not None and f.stats.sweeps >= 1)
            await asyncio.sleep(0.3)
            server.drop_websockets()
            add_blocks(chain, 10, rng)       # notifications for these are lost while disconnected
            await wait_for(lambda: f.stats.ws_reconnects >= 1, timeout=10)
            chain.finalize_all()
            await f.live.wait_caught_up()
            f.stop.set()
            await task
            await f.rpc.close()
        asyncio.run(main())
    seam = f.cp.seam_slot
    assert set(rec.signatures("live")) == {s for s in chain.canonical(set(ADDRS)) if chain.by_sig[s][0].slot > seam}


def test_live_restart_resumes_from_watermark_without_gap(tmp_path):
    rng = random.Random(21)
    chain = MiniChain()
    add_blocks(chain, 50, rng)
    store = CheckpointStore(tmp_path / "cp.json")
    seen: set[str] = set()
    prev: set[str] = set()
    with ChainServer(chain) as server:
        for round_ in range(3):
            rec = Recorder()
            f = make_follower(server, store, rec, page_limit=4)

            async def main(f=f):
                task = asyncio.create_task(f.run())
                await wait_for(lambda: f.live is not None and f.stats.sweeps > 0)
                add_blocks(chain, 40, rng)
                await asyncio.sleep(0.2)        # stop while finality is still pending for some
                f.stop.set()
                await task
                await f.rpc.close()
            asyncio.run(main())
            seen |= set(rec.signatures())
            if round_:
                assert f.stats.replayed > 0 or not (set(rec.signatures()) & prev)
            prev = set(rec.signatures())
        chain.finalize_all()
        rec = Recorder()
        f = make_follower(server, store, rec)
        asyncio.run(f.run_until_caught_up())
        seen |= set(rec.signatures())
    assert seen == chain.canonical(set(ADDRS))


def test_live_under_http_faults_and_websocket_drops(tmp_path):
    rng = random.Random(31)
    chain = MiniChain()
    add_blocks(chain, 60, rng)
    with ChainServer(chain, Faults(rate=0.2, seed=7)) as server:
        rec = Recorder()
        f = make_follower(server, None, rec, ws=True, sweep_interval=0.2, page_limit=6)

        async def main():
            task = asyncio.create_task(f.run())
            await wait_for(lambda: f.live is not None and f.stats.sweeps > 0, timeout=20)
            for i in range(6):
                add_blocks(chain, 15, rng, fork_every=9)
                if i % 2:
                    server.drop_websockets()
                await asyncio.sleep(0.05)
            chain.finalize_all()
            await f.live.wait_caught_up()
            f.stop.set()
            await task
            await f.rpc.close()
        asyncio.run(main())
        assert server.injected > 5
    canon = chain.canonical(set(ADDRS))
    published = set(rec.signatures())
    status = rec.status_of()
    retracted = {s for s, st in status.items() if st == "retracted"}
    assert published - retracted == canon
    assert retracted <= chain.forked_sigs()


def test_transaction_reincluded_after_a_fork_is_republished_and_promoted(tmp_path):
    rng = random.Random(2)
    chain = MiniChain()
    add_blocks(chain, 40, rng)
    with ChainServer(chain) as server:
        rec = Recorder()
        f = make_follower(server, None, rec)

        async def main():
            task = asyncio.create_task(f.run())
            await wait_for(lambda: f.live is not None and f.stats.sweeps > 0)
            chain.hold_finality = True
            forked = chain.add_block([("ProgA",)], forked=True)
            sig = forked.txs[0].signature
            await wait_for(lambda: sig in rec.signatures("live"))
            moved = chain.reinclude(sig)
            chain.add_block([("ProgB",)])
            chain.finalize_all()
            await f.live.wait_caught_up()
            f.stop.set()
            await task
            await f.rpc.close()
            return sig, forked.slot, moved.slot
        sig, old_slot, new_slot = asyncio.run(main())
    copies = [t for t in rec.txs if t.signature == sig]
    assert [(t.slot, t.commitment, t.source) for t in copies] == [(old_slot, "confirmed", "live"),
                                                                   (new_slot, "finalized", "finalizer")]
    [status] = [r for r in rec.statuses if r["signature"] == sig]
    assert (status["status"], status["slot"]) == ("finalized", new_slot)
    assert f.stats.statuses["moved"] == 1


def test_fork_after_a_crash_is_still_retracted(tmp_path):
    """Published at confirmed, process dies, the block forks away while it is down: the next run
    finds the write-ahead pending record in the checkpoint and retracts the events."""
    rng = random.Random(4)
    chain = MiniChain()
    add_blocks(chain, 40, rng)
    store = CheckpointStore(tmp_path / "cp.json")
    with ChainServer(chain) as server:
        rec = Recorder()
        f = make_follower(server, store, rec)

        async def first_run():
            task = asyncio.create_task(f.run())
            await wait_for(lambda: f.live is not None and f.stats.sweeps > 0)
            chain.hold_finality = True
            forked = chain.add_block([("ProgA",)], forked=True)
            sig = forked.txs[0].signature
            await wait_for(lambda: sig in rec.signatures("live"))
            on_disk = (tmp_path / "cp.json").read_bytes()     # what a kill -9 right now leaves behind
            f.stop.set()
            await task
            await f.rpc.close()
            return sig, on_disk
        sig, on_disk = asyncio.run(first_run())
        (tmp_path / "cp.json").write_bytes(on_disk)
        assert sig in store.load().pending                    # written before the events were sent
        chain.add_block([("ProgB",)])
        chain.finalize_all()                                  # the fork is gone for good
        assert chain.getTransaction([sig, {"commitment": "confirmed"}]) is None
        rec2 = Recorder()
        f2 = make_follower(server, store, rec2)
        asyncio.run(f2.run_until_caught_up())
    assert rec2.status_of().get(sig) == "retracted"
    [record] = [r for r in rec2.statuses if r["signature"] == sig]
    assert record["event_ids"] == [f"{sig}:0"]
    assert sig not in store.load().pending


class _RequestLog(RpcStats):
    """RpcStats that also keeps the methods of every HTTP request (one entry per round trip)."""

    def __init__(self) -> None:
        super().__init__()
        self.log: list[dict[str, int]] = []

    def on_request(self, methods, seconds):
        super().on_request(methods, seconds)
        self.log.append(dict(methods))


def test_a_sweep_lists_every_address_in_one_round_trip_and_pages_the_rest():
    """A sweep's first page of every address is one JSON-RPC batch (the sweep that finds nothing new
    is one HTTP request, not one per address); an address with more than a page goes on paging alone,
    and the listing is the same as before: every new transaction, once."""
    rng = random.Random(5)
    chain = MiniChain()
    add_blocks(chain, 20, rng)
    chain.finalize_all()              # the seam is the tip: the live tail starts with nothing to list
    with ChainServer(chain) as server:
        rec = Recorder()
        stats = _RequestLog()
        settings = FollowerSettings(
            addresses=list(ADDRS), backfill=BackfillSettings(page_limit=3, fetch_batch=10),
            live=LiveSettings(page_limit=3, sweep_interval=3600.0, finalize_interval=3600.0),
            checkpoint_interval=0.05)
        f = Follower(RpcClient(server.url, retry=FAST, stats=stats), rec, None, settings)

        def sweep_requests() -> list[dict[str, int]]:
            return [m for m in stats.log if "getSignaturesForAddress" in m]

        async def main() -> set[str]:
            task = asyncio.create_task(f.run())
            await wait_for(lambda: f.live is not None and f.stats.sweeps >= 1 and f.cp.backfill_done)
            await asyncio.sleep(0.05)   # (the backfill's last listing has returned)
            before = len(sweep_requests())
            assert await f.live.sweep_all() == 0
            assert sweep_requests()[before:] == [{"getSignaturesForAddress": len(ADDRS)}]
            # 4 blocks, each with one transaction of every address and one of the first two: per
            # address 8, 8 and 4 new signatures, more than one page (3) for each
            blocks = [chain.add_block([tuple(ADDRS), tuple(ADDRS[:2])]) for _ in range(4)]
            before = len(sweep_requests())
            assert await f.live.sweep_all() == 8 + 8 + 4
            # one batch, then the rest alone: ProgA and ProgB 2 pages more each, MintR 1
            assert sweep_requests()[before:] == [{"getSignaturesForAddress": len(ADDRS)}] + \
                [{"getSignaturesForAddress": 1}] * 5
            await wait_for(lambda: sum(1 for t in rec.txs if t.source == "live") >= 8)
            f.stop.set()
            await task
            return {tx.signature for b in blocks for tx in b.txs}

        new = asyncio.run(main())
        live = [t.signature for t in rec.txs if t.source == "live"]
        assert len(live) == len(set(live)) and set(live) == new and len(new) == 8
