"""Fault injection: exact HTTP/JSON-RPC shapes a real provider produces, deterministic by seed."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from solana.exceptions import SolanaRpcException
from solana.rpc.async_api import AsyncClient
from solana.rpc.core import RPCException
from solana.rpc.websocket_api import SolanaWsClient
from solders.rpc.errors import BlockNotAvailableMessage

from indexer.devchain.faults import FaultConfig
from indexer.devchain.server import serve_in_thread


def run(coro):
    return asyncio.run(coro)


def _post(url, payload):
    async def go():
        async with aiohttp.ClientSession() as s, s.post(url, json=payload) as r:
            return r.status, dict(r.headers), await r.read()
    return run(go())


@pytest.fixture()
def serve(small_ledger):
    handles = []

    def start(faults: dict, **kw):
        h = serve_in_thread(small_ledger, faults=FaultConfig.from_dict(faults), **kw)
        handles.append(h)
        return h
    yield start
    for h in handles:
        h.stop()


SLOT = {"jsonrpc": "2.0", "id": 9, "method": "getSlot"}


def test_decisions_are_deterministic():
    spec = {"seed": 4, "methods": {"*": {"http_429": 0.3, "http_5xx": 0.2, "latency_ms": 10, "latency_rate": 0.5}}}
    a, b = FaultConfig.from_dict(spec), FaultConfig.from_dict(spec)
    seq_a = [(d.kind, d.latency_ms) for d in (a.decide("getSlot") for _ in range(200))]
    seq_b = [(d.kind, d.latency_ms) for d in (b.decide("getSlot") for _ in range(200))]
    assert seq_a == seq_b
    kinds = [k for k, _ in seq_a]
    assert 30 < kinds.count("http_429") < 90 and kinds.count("http_5xx") > 10 and kinds.count(None) > 50
    c = FaultConfig.from_dict({**spec, "seed": 5})
    assert [d.kind for d in (c.decide("getSlot") for _ in range(200))] != kinds
    with pytest.raises(ValueError):
        FaultConfig.from_dict({"methods": {"*": {"http_4299": 1}}})


def test_rate_limit_429_with_retry_after(serve, small_ledger):
    h = serve({"methods": {"getSlot": {"http_429": 1.0, "retry_after": 3}}})
    status, headers, body = _post(h.url, SLOT)
    assert status == 429 and headers["Retry-After"] == "3"
    err = json.loads(body)
    assert err["id"] == 9 and err["error"]["code"] == 429 and err["error"]["message"].startswith("Too many requests")
    with pytest.raises(SolanaRpcException) as e:
        run(AsyncClient(h.url).get_slot())
    assert e.value.__cause__.response.status_code == 429
    assert e.value.__cause__.response.headers["retry-after"] == "3"
    status, _, body = _post(h.url, {"jsonrpc": "2.0", "id": 1, "method": "getHealth"})
    assert status == 200 and json.loads(body)["result"] == "ok"     # only the configured method


def test_server_error_reset_truncate_malformed(serve):
    h = serve({"methods": {"getSlot": {"http_5xx": 1.0}, "getHealth": {"reset": 1.0},
                           "getVersion": {"truncate": 1.0}, "getBlockHeight": {"malformed": 1.0}}})
    status, _, body = _post(h.url, SLOT)
    assert status == 503 and body == b"Service Unavailable"
    with pytest.raises(aiohttp.ClientError):
        _post(h.url, {"jsonrpc": "2.0", "id": 1, "method": "getHealth"})
    with pytest.raises(aiohttp.ClientPayloadError):
        _post(h.url, {"jsonrpc": "2.0", "id": 1, "method": "getVersion"})
    status, _, body = _post(h.url, {"jsonrpc": "2.0", "id": 1, "method": "getBlockHeight"})
    assert status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)


def test_block_not_available_and_unhealthy(serve, small_ledger):
    block = small_ledger.blocks[3]
    h = serve({"methods": {"getBlock": {"block_not_available": 1.0}, "getSlot": {"node_unhealthy": 1.0},
                           "getTransaction": {"block_not_available": 1.0}}})
    with pytest.raises(RPCException) as e:
        run(AsyncClient(h.url).get_block(block.slot, max_supported_transaction_version=0))
    assert isinstance(e.value.args[0], BlockNotAvailableMessage)
    assert e.value.args[0].message == f"Block not available for slot {block.slot}"
    _, _, body = _post(h.url, SLOT)
    assert json.loads(body)["error"] == {"code": -32005, "message": "Node is behind by 42 slots",
                                         "data": {"numSlotsBehind": 42}}
    # -32004 is never injected where Solana would not send it
    sig = block.transactions[0].signature
    _, _, body = _post(h.url, {"jsonrpc": "2.0", "id": 1, "method": "getTransaction",
                               "params": [sig, {"maxSupportedTransactionVersion": 0}]})
    assert json.loads(body)["result"]["slot"] == block.slot


def test_latency(serve):
    import time

    h = serve({"methods": {"getSlot": {"latency_ms": 200}}})
    t = time.perf_counter()
    _post(h.url, SLOT)
    assert time.perf_counter() - t >= 0.09


def test_websocket_drop(serve, small_ledger):
    h = serve({"websocket": {"drop_rate": 1.0}}, start_at=10)

    async def go():
        async with SolanaWsClient(h.ws_url) as ws:
            await ws.slot_subscribe()
            await asyncio.get_running_loop().run_in_executor(None, h.advance, 3)
            with pytest.raises(Exception) as e:
                await asyncio.wait_for(ws.recv(), 3)
            assert "Timeout" not in type(e.value).__name__
    run(go())


def test_websocket_stall(serve):
    h = serve({"websocket": {"stall_rate": 1.0, "stall_seconds": 60}}, start_at=10)

    async def go():
        async with SolanaWsClient(h.ws_url) as ws:
            await ws.slot_subscribe()
            await asyncio.get_running_loop().run_in_executor(None, h.advance, 3)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 1.5)
    run(go())


def test_load_json_and_yaml(tmp_path):
    p = tmp_path / "f.json"
    p.write_text(json.dumps({"seed": 2, "methods": {"*": {"http_429": 0.5}}}))
    assert FaultConfig.load(p).methods == {"*": {"http_429": 0.5}}
    y = tmp_path / "f.yaml"
    y.write_text("seed: 2\nmethods:\n  getBlock:\n    block_not_available: 0.25\nwebsocket:\n  drop_rate: 0.1\n")
    cfg = FaultConfig.load(y)
    assert cfg.methods == {"getBlock": {"block_not_available": 0.25}} and cfg.websocket == {"drop_rate": 0.1}
