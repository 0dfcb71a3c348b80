"""The JSON-RPC + websocket server, driven by solana-py's own clients (responses parse into solders
types) and by raw HTTP where the exact JSON shape matters."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.commitment import Confirmed, Finalized, Processed
from solana.rpc.core import RPCException
from solana.rpc.websocket_api import SolanaWsClient
from solders.pubkey import Pubkey
from solders.rpc.config import RpcTransactionLogsFilterMentions
from solders.rpc.errors import (
    BlockNotAvailableMessage,
    LongTermStorageSlotSkippedMessage,
    SlotSkippedMessage,
    UnsupportedTransactionVersionMessage,
)
from solders.signature import Signature
from solders.transaction import VersionedTransaction
from solders.transaction_status import UiConfirmedBlock

from indexer.devchain import accounts as A
from indexer.devchain.ledger import SimConfig, generate_ledger
from indexer.devchain.server import FINAL_LAG, serve_in_thread


def run(coro):
    return asyncio.run(coro)


async def raw(url: str, payload):
    async with aiohttp.ClientSession() as s, s.post(url, json=payload) as r:
        return r.status, await r.json(content_type=None)


def _v0_block(ledger):
    return next(b for b in ledger.blocks if not b.forked and any(t.version == 0 for t in b.transactions))


def _skipped_slot(ledger):
    canonical = [b for b in ledger.blocks if not b.forked]
    return canonical[3].slot + 1


def test_cluster_methods(fast_server, small_ledger):
    async def go():
        async with AsyncClient(fast_server.url) as c:
            assert (await c.get_slot()).value == small_ledger.blocks[-1].slot if not small_ledger.blocks[-1].forked \
                else True
            last = [b for b in small_ledger.blocks if not b.forked][-1]
            assert (await c.get_slot(Finalized)).value == last.slot
            assert (await c.get_block_height(Finalized)).value == last.block_height
            assert (await c.get_version()).value.solana_core == "2.2.16"
            assert (await c.get_first_available_block()).value == small_ledger.blocks[0].slot
            assert (await c.is_connected()) is True
        status, body = await raw(fast_server.url, {"jsonrpc": "2.0", "id": 7, "method": "getHealth"})
        assert (status, body) == (200, {"jsonrpc": "2.0", "result": "ok", "id": 7})
    run(go())


def test_get_block_encodings_and_version_gate(fast_server, small_ledger):
    block = _v0_block(small_ledger)

    async def go():
        async with AsyncClient(fast_server.url) as c:
            for enc in ("json", "jsonParsed", "base64"):
                resp = await c.get_block(block.slot, encoding=enc, max_supported_transaction_version=0)
                assert isinstance(resp.value, UiConfirmedBlock)
                assert resp.value.blockhash.__str__() == block.blockhash
                assert resp.value.parent_slot == block.parent_slot
                assert len(resp.value.transactions) == len(block.transactions)
                if enc == "base64":
                    first = resp.value.transactions[0].transaction
                    assert isinstance(first, VersionedTransaction)
                    assert bytes(first) == block.transactions[0].wire
            with pytest.raises(RPCException) as e:
                await c.get_block(block.slot)
            assert isinstance(e.value.args[0], UnsupportedTransactionVersionMessage)
        status, body = await raw(fast_server.url, {"jsonrpc": "2.0", "id": 1, "method": "getBlock", "params": [
            block.slot, {"transactionDetails": "signatures", "rewards": False, "maxSupportedTransactionVersion": 0}]})
        assert body["result"]["signatures"] == [t.signature for t in block.transactions]
        assert "rewards" not in body["result"] and "transactions" not in body["result"]
        _, body = await raw(fast_server.url, {"jsonrpc": "2.0", "id": 1, "method": "getBlock",
                                              "params": [block.slot, {"transactionDetails": "none"}]})
        assert set(body["result"]) == {"blockHeight", "blockTime", "blockhash", "parentSlot", "previousBlockhash",
                                       "rewards"}
        _, body = await raw(fast_server.url, {"jsonrpc": "2.0", "id": 1, "method": "getBlock",
                                              "params": [block.slot, {"commitment": "processed"}]})
        assert body["error"] == {"code": -32602, "message": "Method does not support commitment below `confirmed`"}
    run(go())


def test_skipped_and_unavailable_slots(fast_server, small_ledger):
    skipped = _skipped_slot(small_ledger)

    async def go():
        async with AsyncClient(fast_server.url) as c:
            with pytest.raises(RPCException) as e:
                await c.get_block(skipped, max_supported_transaction_version=0)
            assert isinstance(e.value.args[0], SlotSkippedMessage)
            assert e.value.args[0].message == (f"Slot {skipped} was skipped, or missing due to ledger jump to "
                                               "recent snapshot")
            future = small_ledger.blocks[-1].slot + 10
            with pytest.raises(RPCException) as e:
                await c.get_block(future, max_supported_transaction_version=0)
            assert isinstance(e.value.args[0], BlockNotAvailableMessage)
            assert e.value.args[0].message == f"Block not available for slot {future}"
            with pytest.raises(RPCException) as e:
                await c.get_block_time(skipped)
            assert isinstance(e.value.args[0], SlotSkippedMessage)
    run(go())
    handle = serve_in_thread(small_ledger, local_retention_slots=1000)
    try:
        async def old():
            async with AsyncClient(handle.url) as c:
                with pytest.raises(RPCException) as e:
                    await c.get_block(skipped, max_supported_transaction_version=0)
                assert isinstance(e.value.args[0], LongTermStorageSlotSkippedMessage)
                assert e.value.args[0].message == f"Slot {skipped} was skipped, or missing in long-term storage"
        run(old())
    finally:
        handle.stop()


def test_get_blocks_and_block_time(fast_server, small_ledger):
    canonical = [b for b in small_ledger.blocks if not b.forked]

    async def go():
        async with AsyncClient(fast_server.url) as c:
            lo, hi = canonical[0].slot, canonical[30].slot
            assert (await c.get_blocks(lo, hi)).value == [b.slot for b in canonical[:31]]
            assert (await c.get_block_time(canonical[5].slot)).value == canonical[5].block_time
        _, body = await raw(fast_server.url, {"jsonrpc": "2.0", "id": 1, "method": "getBlocks",
                                              "params": [0, 600_000]})
        assert body["error"] == {"code": -32602, "message": "Slot range too large; max 500000"}
    run(go())


def _address_history(ledger, address):
    out = []
    for b in ledger.blocks:
        if b.forked:
            continue
        for tx in b.transactions:
            if address in tx.account_keys:
                out.append((tx.signature, b.slot))
    return list(reversed(out))


def test_signatures_for_address_paging(fast_server, small_ledger):
    history = _address_history(small_ledger, A.DC)
    assert len(history) > 60

    async def go():
        async with AsyncClient(fast_server.url) as c:
            dc = Pubkey.from_string(A.DC)
            page = (await c.get_signatures_for_address(dc, limit=25)).value
            assert [(str(s.signature), s.slot) for s in page] == history[:25]
            assert all(str(s.confirmation_status) .endswith("Finalized") for s in page)
            nxt = (await c.get_signatures_for_address(dc, before=page[-1].signature, limit=25)).value
            assert [str(s.signature) for s in nxt] == [h[0] for h in history[25:50]]
            until = Signature.from_string(history[10][0])
            upto = (await c.get_signatures_for_address(dc, until=until)).value
            assert [str(s.signature) for s in upto] == [h[0] for h in history[:10]]
            everything = (await c.get_signatures_for_address(dc)).value
            assert [str(s.signature) for s in everything] == [h[0] for h in history[:1000]]
            failed = [s for s in everything if s.err is not None]
            assert failed, "failed transactions must be listed with their err"
            memo_tx = (await c.get_signatures_for_address(
                Pubkey.from_string(A.MEMO_PROGRAM), limit=5, commitment=Confirmed)).value
            assert memo_tx and all(s.memo.startswith("[") for s in memo_tx)
            with pytest.raises(RPCException):
                await c.get_signatures_for_address(dc, commitment=Processed)
        _, body = await raw(fast_server.url, {"jsonrpc": "2.0", "id": 1, "method": "getSignaturesForAddress",
                                              "params": [A.DC, {"limit": 1001}]})
        assert body["error"]["code"] == -32602
        unknown = str(Signature.default())
        _, body = await raw(fast_server.url, {"jsonrpc": "2.0", "id": 1, "method": "getSignaturesForAddress",
                                              "params": [A.DC, {"before": unknown}]})
        assert body["result"] == []
    run(go())


def test_get_transaction_and_statuses(fast_server, small_ledger):
    rec = next(t for t in small_ledger.transactions() if t.version == 0 and t.inner)

    async def go():
        async with AsyncClient(fast_server.url) as c:
            sig = Signature.from_string(rec.signature)
            for enc in ("json", "jsonParsed", "base64"):
                v = (await c.get_transaction(sig, encoding=enc, max_supported_transaction_version=0)).value
                assert v.slot == rec.slot and v.block_time == rec.block_time
                assert v.transaction.meta.fee == rec.fee
                assert len(v.transaction.meta.inner_instructions) == len(rec.inner)
            with pytest.raises(RPCException) as e:
                await c.get_transaction(sig)
            assert isinstance(e.value.args[0], UnsupportedTransactionVersionMessage)
            assert (await c.get_transaction(Signature.default(), max_supported_transaction_version=0)).value is None
            st = (await c.get_signature_statuses([sig, Signature.default()])).value
            assert st[0].slot == rec.slot and str(st[0].confirmation_status).endswith("Finalized")
            assert st[1] is None
    run(go())


def test_account_info(fast_server, small_ledger):
    acct, (mint, owner, amount) = next((a, v) for a, v in small_ledger.tokens.accounts.items() if v[0] == A.HNT)

    async def go():
        async with AsyncClient(fast_server.url) as c:
            m = (await c.get_account_info_json_parsed(Pubkey.from_string(A.RENDER))).value
            assert m.data.parsed["info"]["decimals"] == 8 and m.owner == Pubkey.from_string(A.TOKEN_PROGRAM)
            t = (await c.get_account_info(Pubkey.from_string(acct))).value
            data = bytes(t.data)
            assert data[:32] == bytes(Pubkey.from_string(mint)) and data[32:64] == bytes(Pubkey.from_string(owner))
            assert int.from_bytes(data[64:72], "little") == amount
            assert (await c.get_account_info(Pubkey.new_unique())).value is None
    run(go())


def test_batch_and_protocol_errors(fast_server):
    async def go():
        status, body = await raw(fast_server.url, [
            {"jsonrpc": "2.0", "id": 1, "method": "getSlot"},
            {"jsonrpc": "2.0", "id": "b", "method": "getHealth"},
            {"jsonrpc": "2.0", "id": 3, "method": "noSuchMethod"},
        ])
        assert status == 200 and [r["id"] for r in body] == [1, "b", 3]
        assert body[1]["result"] == "ok"
        assert body[2]["error"] == {"code": -32601, "message": "Method not found"}
        _, body = await raw(fast_server.url, [])
        assert body["error"] == {"code": -32600, "message": "Invalid request"}
        async with aiohttp.ClientSession() as s, s.post(fast_server.url, data=b"{nope") as r:
            assert (await r.json(content_type=None))["error"] == {"code": -32700, "message": "Parse error"}
    run(go())


def _fork_ledger():
    return generate_ledger(SimConfig(seed=21, slots_per_day=300, tx_per_slot=2.0, fork_rate=0.05, failed_rate=0.0))


def test_forked_block_visible_at_confirmed_then_vanishes():
    ledger = _fork_ledger()
    pos = next(i for i, b in enumerate(ledger.blocks) if b.forked and b.transactions and i > 5)
    fork = ledger.blocks[pos]
    handle = serve_in_thread(ledger, start_at=pos + 3)
    try:
        async def before():
            async with AsyncClient(handle.url) as c:
                b = (await c.get_block(fork.slot, commitment=Confirmed, max_supported_transaction_version=0)).value
                assert len(b.transactions) == len(fork.transactions)
                sig = Signature.from_string(fork.transactions[0].signature)
                v = (await c.get_transaction(sig, commitment=Confirmed, max_supported_transaction_version=0)).value
                assert v is not None and v.slot == fork.slot
                assert (await c.get_transaction(sig, commitment=Finalized,
                                                max_supported_transaction_version=0)).value is None
                with pytest.raises(RPCException) as e:
                    await c.get_block(fork.slot, commitment=Finalized, max_supported_transaction_version=0)
                assert isinstance(e.value.args[0], BlockNotAvailableMessage)
                st = (await c.get_signature_statuses([sig])).value[0]
                assert str(st.confirmation_status).endswith("Confirmed")
                key = next(k for k in fork.transactions[0].account_keys if k not in (A.SYSTEM_PROGRAM,))
                sigs = (await c.get_signatures_for_address(Pubkey.from_string(key), commitment=Confirmed)).value
                assert str(sigs[0].signature) == fork.transactions[0].signature or any(
                    str(s.signature) == fork.transactions[0].signature for s in sigs)
        run(before())
        handle.advance(FINAL_LAG + 5)

        async def after():
            async with AsyncClient(handle.url) as c:
                with pytest.raises(RPCException) as e:
                    await c.get_block(fork.slot, commitment=Confirmed, max_supported_transaction_version=0)
                assert isinstance(e.value.args[0], SlotSkippedMessage)
                sig = Signature.from_string(fork.transactions[0].signature)
                assert (await c.get_transaction(sig, commitment=Confirmed,
                                                max_supported_transaction_version=0)).value is None
                assert (await c.get_signature_statuses([sig])).value[0] is None
            async with AsyncClient(handle.url, commitment=Confirmed) as c:
                assert fork.slot not in (await c.get_blocks(fork.slot - 1000, fork.slot + 1000)).value
        run(after())
    finally:
        handle.stop()


def test_commitment_tips_lag():
    ledger = _fork_ledger()
    handle = serve_in_thread(ledger, start_at=60)
    try:
        async def go():
            async with AsyncClient(handle.url) as c:
                p = (await c.get_slot(Processed)).value
                conf = (await c.get_slot(Confirmed)).value
                fin = (await c.get_slot(Finalized)).value
                assert fin < conf <= p
                slots = [b.slot for b in ledger.blocks]
                assert slots.index(p) - slots.index(fin) >= FINAL_LAG - 2
                assert p == ledger.blocks[59].slot
        run(go())
        handle.finalize_all()
        assert run(AsyncClient(handle.url).get_slot(Finalized)).value == [b for b in ledger.blocks
                                                                           if not b.forked][-1].slot
    finally:
        handle.stop()


def test_websocket_slot_and_logs_subscriptions():
    ledger = _fork_ledger()
    handle = serve_in_thread(ledger, start_at=40)
    confirmed_end = 40 + 12 - 1
    want_logs = [tx.signature for b in ledger.blocks[40 - 1:confirmed_end] for tx in b.transactions
                 if A.DC in tx.account_keys]
    try:
        async def go():
            async with SolanaWsClient(handle.ws_url) as ws:
                slot_sub = await ws.slot_subscribe()
                logs_sub = await ws.logs_subscribe(
                    filter_=RpcTransactionLogsFilterMentions(Pubkey.from_string(A.DC)), commitment=Confirmed)
                await asyncio.get_running_loop().run_in_executor(None, handle.advance, 12)
                got = []
                try:
                    while True:
                        got.append(await asyncio.wait_for(ws.recv(), 1.5))
                except TimeoutError:
                    pass
                slots = [m.result.slot for m in got if type(m).__name__ == "SlotNotification"]
                logs = [str(m.result.value.signature) for m in got if type(m).__name__ == "LogsNotification"]
                assert slots == [b.slot for b in ledger.blocks[40:52]]
                assert logs == want_logs and logs
                await ws.unsubscribe(slot_sub)
                await ws.unsubscribe(logs_sub)
                await asyncio.get_running_loop().run_in_executor(None, handle.advance, 5)
                with pytest.raises(TimeoutError):
                    await asyncio.wait_for(ws.recv(), 1.0)
        run(go())
    finally:
        handle.stop()


def test_realtime_clock_advances():
    ledger = generate_ledger(SimConfig(seed=3, slots_per_day=100, tx_per_slot=1.0))
    handle = serve_in_thread(ledger, realtime=True)
    try:
        first = run(AsyncClient(handle.url).get_slot(Processed)).value
        time.sleep(1.7)
        later = run(AsyncClient(handle.url).get_slot(Processed)).value
        slots = [b.slot for b in ledger.blocks]
        assert slots.index(later) - slots.index(first) >= 3
        with pytest.raises(SolanaRpcException):
            run(AsyncClient("http://127.0.0.1:9").get_slot())
    finally:
        handle.stop()


def test_min_context_slot(fast_server, small_ledger):
    async def go():
        far = small_ledger.blocks[-1].slot + 100
        _, body = await raw(fast_server.url, {"jsonrpc": "2.0", "id": 1, "method": "getSignaturesForAddress",
                                              "params": [A.DC, {"minContextSlot": far}]})
        assert body["error"]["code"] == -32016
        assert body["error"]["message"] == "Minimum context slot has not been reached"
        _, body = await raw(fast_server.url, {"jsonrpc": "2.0", "id": 1, "method": "getSlot",
                                              "params": [{"minContextSlot": small_ledger.blocks[0].slot}]})
        assert "result" in body
    run(go())


def test_control_methods_drive_a_held_server():
    ledger = generate_ledger(SimConfig(seed=3, slots_per_day=100, tx_per_slot=1.0))
    handle = serve_in_thread(ledger, start_at=5)
    try:
        async def go():
            _, body = await raw(handle.url, {"jsonrpc": "2.0", "id": 1, "method": "devchain_advance", "params": [3]})
            assert body["result"]["processed"] == ledger.blocks[7].slot
            _, body = await raw(handle.url, {"jsonrpc": "2.0", "id": 1, "method": "devchain_finalizeAll"})
            assert body["result"]["finalized"] == [b for b in ledger.blocks if not b.forked][-1].slot
        run(go())
    finally:
        handle.stop()
