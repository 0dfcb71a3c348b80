"""A minimal chain behind a real HTTP/websocket JSON-RPC server, for the sources' unit tests.

WHY besides the devchain simulator: the sources never look inside a transaction, so these tests use
opaque transactions and script the chain precisely (advance N slots, fork slot X, hold finality back,
inject faults at a rate) to pin the seam, the sweep, the finalizer and the checkpoint logic. The
end-to-end tests in tests/pipelines/listen use the real simulator.

Semantics follow Agave where the sources depend on them: getSignaturesForAddress is newest first
(slots descending, reverse order inside a block), `before` unknown -> [], `until` unknown -> walk to
the beginning; forked blocks are visible at confirmed until the finalized slot passes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web


@dataclass
class Tx:
    signature: str
    slot: int
    addresses: tuple[str, ...]
    err: object | None = None


@dataclass
class Block:
    slot: int
    block_time: int
    txs: list[Tx] = field(default_factory=list)
    forked: bool = False


class MiniChain:
    """Blocks and commitment levels; thread-safe (the server runs in its own thread)."""

    def __init__(self, start_slot: int = 1000, start_time: int = 1_770_000_000) -> None:
        self.lock = threading.RLock()
        self.blocks: list[Block] = []
        self.by_sig: dict[str, tuple[Block, Tx]] = {}
        self.next_slot = start_slot
        self.start_time = start_time
        self.confirmed = start_slot - 1
        self.finalized = start_slot - 1
        self.counter = 0
        self.hold_finality = False
        self.listeners: list = []   # callables(block) the server uses for websocket notifications
        self.first_available = start_slot   # getFirstAvailableBlock: purge_below moves it (ledger retention)

    def add_block(self, tx_addresses: list[tuple[str, ...]], *, forked: bool = False, skip: int = 0,
                  err_every: int = 0) -> Block:
        with self.lock:
            self.next_slot += skip
            slot = self.next_slot
            self.next_slot += 1
            block = Block(slot, self.start_time + (slot - 1000) * 2 // 5, forked=forked)
            for addrs in tx_addresses:
                self.counter += 1
                err = {"InstructionError": [0, "Custom"]} if err_every and self.counter % err_every == 0 else None
                tx = Tx(f"sig{self.counter:07d}s{slot}", slot, tuple(addrs), err)
                block.txs.append(tx)
                self.by_sig[tx.signature] = (block, tx)
            self.blocks.append(block)
            self.confirmed = slot
            if not self.hold_finality:
                self.finalized = max(self.finalized, slot - 32)
        for listener in list(self.listeners):
            listener(block)
        return block

    def reinclude(self, signature: str) -> Block:
        """Move a transaction out of its (forked) block into a new canonical block, as a leader
        re-including a still-valid transaction after a fork does."""
        with self.lock:
            old_block, tx = self.by_sig[signature]
            old_block.txs.remove(tx)
            slot = self.next_slot
            self.next_slot += 1
            block = Block(slot, self.start_time + (slot - 1000) * 2 // 5, txs=[tx])
            tx.slot = slot
            self.by_sig[signature] = (block, tx)
            self.blocks.append(block)
            self.confirmed = slot
        for listener in list(self.listeners):
            listener(block)
        return block

    def purge_below(self, slot: int) -> None:
        """Forget every block below `slot`, as a node with limited ledger retention does: its
        transactions answer getTransaction null and getSignatureStatuses null, like forked ones."""
        with self.lock:
            self.first_available = max(self.first_available, slot)
            for block in [b for b in self.blocks if b.slot < slot]:
                self.blocks.remove(block)
                for tx in block.txs:
                    self.by_sig.pop(tx.signature, None)

    def finalize_all(self) -> None:
        with self.lock:
            self.finalized = self.confirmed

    def visible(self, block: Block, commitment: str) -> bool:
        limit = self.finalized if commitment == "finalized" else self.confirmed
        if block.slot > limit:
            return False
        if block.forked:
            return commitment != "finalized" and block.slot > self.finalized
        return True

    # -- ground truth for assertions -------------------------------------------------------------
    def canonical(self, addresses: set[str], min_slot: int = 0) -> set[str]:
        with self.lock:
            return {t.signature for b in self.blocks if not b.forked and b.slot >= min_slot
                    for t in b.txs if addresses.intersection(t.addresses)}

    def forked_sigs(self) -> set[str]:
        with self.lock:
            return {t.signature for b in self.blocks if b.forked for t in b.txs}

    # -- RPC methods -----------------------------------------------------------------------------
    def getSlot(self, params: list) -> int:
        cfg = params[0] if params else {}
        return self.finalized if cfg.get("commitment") == "finalized" else self.confirmed

    def getFirstAvailableBlock(self, params: list) -> int:
        return self.first_available

    def getSignaturesForAddress(self, params: list) -> list[dict]:
        addr = params[0]
        cfg = params[1] if len(params) > 1 else {}
        commitment = cfg.get("commitment", "finalized")
        limit = min(int(cfg.get("limit", 1000)), 1000)
        items = []
        for block in reversed(self.blocks):
            if not self.visible(block, commitment):
                continue
            for tx in reversed(block.txs):
                if addr in tx.addresses:
                    items.append((block, tx))
        start = 0
        if cfg.get("before"):
            idx = next((i for i, (_, t) in enumerate(items) if t.signature == cfg["before"]), None)
            if idx is None:
                return []
            start = idx + 1
        end = len(items)
        if cfg.get("until"):
            idx = next((i for i, (_, t) in enumerate(items) if t.signature == cfg["until"]), None)
            if idx is not None:
                end = idx
        out = []
        for block, tx in items[start:end][:limit]:
            status = "finalized" if block.slot <= self.finalized and not block.forked else "confirmed"
            out.append({"signature": tx.signature, "slot": block.slot, "err": tx.err, "memo": None,
                        "blockTime": block.block_time, "confirmationStatus": status})
        return out

    def getTransaction(self, params: list) -> dict | None:
        sig = params[0]
        cfg = params[1] if len(params) > 1 else {}
        found = self.by_sig.get(sig)
        if found is None:
            return None
        block, tx = found
        if not self.visible(block, cfg.get("commitment", "finalized")):
            return None
        return {"slot": block.slot, "blockTime": block.block_time, "version": 0,
                "transaction": [tx.signature, "base64"],
                "meta": {"err": tx.err, "addresses": list(tx.addresses)}}

    def getSignatureStatuses(self, params: list) -> dict:
        out = []
        for sig in params[0]:
            found = self.by_sig.get(sig)
            if found is None or not self.visible(found[0], "confirmed"):
                out.append(None)
                continue
            block, tx = found
            final = block.slot <= self.finalized and not block.forked
            out.append({"slot": block.slot, "confirmations": None if final else 1, "err": tx.err,
                        "confirmationStatus": "finalized" if final else "confirmed"})
        return {"context": {"slot": self.confirmed}, "value": out}


@dataclass
class Faults:
    rate: float = 0.0                      # share of HTTP requests that fail
    kinds: tuple[str, ...] = ("429", "500", "reset", "truncate")
    seed: int = 1


class ChainServer:
    """Serves a MiniChain over HTTP + websocket from a background thread."""

    def __init__(self, chain: MiniChain, faults: Faults | None = None) -> None:
        self.chain = chain
        self.faults = faults or Faults()
        self.rng = random.Random(self.faults.seed)
        self.requests = 0
        self.injected = 0
        self.delay = 0.0            # seconds each HTTP request takes (a slow node)
        self.in_flight = 0
        self.max_in_flight = 0      # most HTTP requests being answered at once
        self.url = ""
        self.ws_url = ""
        self._ws: list[tuple[web.WebSocketResponse, dict[int, tuple[str, list]]]] = []
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def __enter__(self) -> ChainServer:
        self._thread.start()
        self._ready.wait(10)
        self.chain.listeners.append(self._on_block)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self._on_block in self.chain.listeners:
            self.chain.listeners.remove(self._on_block)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        app = web.Application()
        app.router.add_post("/", self._http)
        app.router.add_get("/ws", self._ws_handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        self._ready.set()
        await self._stop_event.wait()
        for ws, _ in list(self._ws):
            await ws.close()
        await runner.cleanup()

    async def _http(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return await self._http_answer(request)
        finally:
            self.in_flight -= 1

    async def _http_answer(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        body = orjson.loads(await request.read())
        if self.faults.rate and self.rng.random() < self.faults.rate:
            self.injected += 1
            kind = self.rng.choice(self.faults.kinds)
            if kind == "429":
                return web.Response(status=429, headers={"Retry-After": "0.05"})
            if kind == "500":
                return web.Response(status=500)
            if kind == "reset":
                assert request.transport is not None
                request.transport.close()
                return web.Response()
            if kind == "truncate":
                full = orjson.dumps(self._answer_all(body))
                return web.Response(body=full[: len(full) // 2], content_type="application/json")
        return web.Response(body=orjson.dumps(self._answer_all(body)), content_type="application/json")

    def _answer_all(self, body: Any) -> Any:
        with self.chain.lock:
            if isinstance(body, list):
                return [self._answer(c) for c in body]
            return self._answer(body)

    def _answer(self, call: dict) -> dict:
        fn = getattr(self.chain, call["method"], None)
        if fn is None:
            return {"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32601, "message": "Method not found"}}
        return {"jsonrpc": "2.0", "id": call["id"], "result": fn(call.get("params") or [])}

    async def _ws_handler(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        subs: dict[int, tuple[str, list]] = {}
        entry = (ws, subs)
        self._ws.append(entry)
        try:
            async for msg in ws:
                data = orjson.loads(msg.data)
                sub_id = len(subs) + 1
                subs[sub_id] = (data["method"], data.get("params") or [])
                with contextlib.suppress(ConnectionError):
                    await ws.send_bytes(orjson.dumps({"jsonrpc": "2.0", "id": data["id"], "result": sub_id}))
        finally:
            self._ws.remove(entry)
        return ws

    def _on_block(self, block: Block) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(lambda: asyncio.ensure_future(self._notify(block)))

    async def _notify(self, block: Block) -> None:
        for ws, subs in list(self._ws):
            for sub_id, (method, params) in list(subs.items()):
                if method == "slotSubscribe":
                    result: Any = {"slot": block.slot, "parent": block.slot - 1, "root": self.chain.finalized}
                    await _send(ws, "slotNotification", sub_id, result)
                elif method == "logsSubscribe":
                    addr = params[0]["mentions"][0]
                    for tx in block.txs:
                        if addr in tx.addresses:
                            result = {"context": {"slot": block.slot},
                                      "value": {"signature": tx.signature, "err": tx.err, "logs": []}}
                            await _send(ws, "logsNotification", sub_id, result)

    def drop_websockets(self) -> None:
        if self._loop is not None:
            for ws, _ in list(self._ws):
                asyncio.run_coroutine_threadsafe(ws.close(), self._loop)


async def _send(ws: web.WebSocketResponse, method: str, sub_id: int, result: Any) -> None:
    if not ws.closed:
        with contextlib.suppress(ConnectionError):
            await ws.send_bytes(orjson.dumps({"jsonrpc": "2.0", "method": method,
                                              "params": {"result": result, "subscription": sub_id}}))
