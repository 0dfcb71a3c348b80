"""Block walker pieces: raw prefilter, signature extraction, typed skipped slots, slot-for-time search."""

from __future__ import annotations

import asyncio
import base64

from solders.hash import Hash
from solders.instruction import AccountMeta, Instruction
from solders.keypair import Keypair
from solders.message import Message
from solders.pubkey import Pubkey
from solders.transaction import Transaction

from indexer.checkpoint import Checkpoint
from indexer.rpc import RetryPolicy, RpcClient
from indexer.sources.blocks import (
    BlockSettings,
    BlockWalker,
    TxFilter,
    block_transactions,
    first_signature,
    slot_at_time,
)
from indexer.sources.types import LowerBound, SourceStats
from tests.indexer.rpc.fakenode import FakeNode
from tests.indexer.sources.recorder import Recorder

WATCHED = "credMBJhYFzfn7NxBMdU4aUqFggAjgztaCcv2Fo6fPT"
RENDER = "rndrizKT3MK1iimdxRdWabcF7Zg7AR5T4nud4EkHBof"


def wire_tx(program: str) -> tuple[bytes, str]:
    payer = Keypair.from_seed(bytes(32))
    ix = Instruction(Pubkey.from_string(program), b"\x01", [AccountMeta(payer.pubkey(), True, True)])
    tx = Transaction([payer], Message([ix], payer.pubkey()), Hash.default())
    return bytes(tx), str(tx.signatures[0])


def block_with(*txs: tuple[bytes, dict]) -> dict:
    return {"blockTime": 1_774_656_000, "transactions": [
        {"transaction": [base64.b64encode(w).decode(), "base64"], "meta": meta, "version": "legacy"}
        for w, meta in txs]}


def test_first_signature_and_prefilter():
    watched, sig_w = wire_tx(WATCHED)
    noise, sig_n = wire_tx("11111111111111111111111111111111")
    assert first_signature(watched) == sig_w and first_signature(noise) == sig_n
    flt = TxFilter([WATCHED, RENDER])
    render_balance = {"postTokenBalances": [{"mint": RENDER, "accountIndex": 1}]}
    lut = {"loadedAddresses": {"writable": [], "readonly": [RENDER]}}
    assert flt.relevant(watched, {}) and not flt.relevant(noise, {})
    assert flt.relevant(noise, render_balance) and flt.relevant(noise, lut)
    block = block_with((watched, {}), (noise, {}), (noise, render_balance))
    got = list(block_transactions(block, 77, flt))
    assert [s for s, _ in got] == [sig_w, sig_n]
    assert got[0][1]["slot"] == 77 and got[0][1]["blockTime"] == 1_774_656_000


def walk_slots_100_to_102(blocks: dict[int, dict], faults: dict[int, list[int]], timeout: float = 30):
    """Run a non-following BlockWalker over slots 100..102 (all listed) of a FakeNode serving `blocks`, with
    JSON-RPC error codes injected per getBlock slot (`faults`), the client retrying 3 times.
    Returns (walker, recorder, checkpoint, node, stats)."""
    async def main():
        node = await FakeNode(methods={
            "getSlot": lambda p: 102, "getBlocks": lambda p: [100, 101, 102], "getBlock": lambda p: blocks[p[0]],
            "getFirstAvailableBlock": lambda p: 50,
        }).start()
        for slot, codes in faults.items():
            node.call_faults[("getBlock", slot)] = list(codes)
        try:
            rpc = RpcClient(node.url, retry=RetryPolicy(attempts=3, base_delay=0.001))
            rec, cp, stats = Recorder(), Checkpoint(mode="blocks"), SourceStats()
            walker = BlockWalker(rpc, rec, cp, TxFilter([WATCHED]), LowerBound(from_slot=100), BlockSettings(),
                                 stats, asyncio.Event(), follow=False)
            await asyncio.wait_for(walker.run(), timeout)
            await rpc.close()
            return walker, rec, cp, node, stats
        finally:
            await node.stop()
    return asyncio.run(main())


def test_listed_block_answering_skipped_is_recorded_not_retried():
    watched, sig = wire_tx(WATCHED)
    blocks = {100: block_with((watched, {"err": None})), 102: block_with()}
    # 101: listed, then abandoned by a fork
    walker, rec, cp, node, _ = walk_slots_100_to_102(blocks, {101: [-32007] * 5}, timeout=20)
    assert walker.skipped_slots == 1
    assert node.calls.count(("getBlock", 101)) == 1
    assert [t.signature for t in rec.txs] == [sig] and rec.txs[0].commitment == "finalized"
    assert cp.block_slot == 102


def test_block_unavailable_beyond_the_client_retries_is_fetched_again_not_a_failure():
    """-32004 five times in a row for one listed block, the client retrying 3 times: the walker asks again
    (patiently, counted) for that block only, publishes it, and finishes."""
    watched, sig = wire_tx(WATCHED)
    blocks = {100: block_with((watched, {"err": None})), 101: block_with(), 102: block_with()}
    _, rec, cp, node, stats = walk_slots_100_to_102(blocks, {100: [-32004] * 5})
    assert node.calls.count(("getBlock", 100)) == 6                 # 3 + 3 client attempts, the 6th answered
    assert node.calls.count(("getBlock", 101)) == 1 and node.calls.count(("getBlock", 102)) == 1  # kept
    assert stats.source_retries["getBlock"] == 1
    assert [t.signature for t in rec.txs] == [sig] and rec.txs[0].commitment == "finalized"
    assert cp.block_slot == 102


def test_slot_at_time_binary_search():
    slots = list(range(1000, 2000, 3))               # a block every third slot
    def blocks_with_limit(params):
        start = params[0]
        return [s for s in slots if s >= start][:1]

    async def main():
        node = await FakeNode(methods={
            "getFirstAvailableBlock": lambda p: 1000, "getSlot": lambda p: 1999,
            "getBlocksWithLimit": blocks_with_limit, "getBlockTime": lambda p: 5_000 + (p[0] - 1000) // 2,
        }).start()
        try:
            async with RpcClient(node.url) as rpc:
                return await slot_at_time(rpc, 5_200, SourceStats(), None)
        finally:
            await node.stop()
    slot = asyncio.run(main())
    first_block = min(s for s in slots if s >= slot)
    last_before = max(s for s in slots if s < slot)
    assert 5_000 + (first_block - 1000) // 2 >= 5_200 > 5_000 + (last_before - 1000) // 2
