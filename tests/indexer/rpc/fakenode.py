"""A tiny JSON-RPC HTTP + websocket server for RPC client tests, with scripted faults.

WHY not the chain simulator here: these tests pin exact client behaviour per fault (one 429 with a given
Retry-After, one truncated body, one -32004 for one call of a batch), which needs a server whose every
answer the test scripts. The integration tests use the simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

Handler = Callable[[list], Any]


@dataclass
class FakeNode:
    methods: dict[str, Handler] = field(default_factory=dict)
    # Request-level faults applied to the next HTTP requests, in order: "429:<secs>", "500", "reset",
    # "truncate", "malformed", "503".
    request_faults: list[str] = field(default_factory=list)
    # Call-level faults keyed by (method, first param): a list of JSON-RPC error codes to answer, in order.
    call_faults: dict[tuple[str, Any], list[int]] = field(default_factory=dict)
    requests: int = 0
    calls: list[tuple[str, Any]] = field(default_factory=list)
    request_times: list[float] = field(default_factory=list)
    ws_clients: list[web.WebSocketResponse] = field(default_factory=list)
    ws_subscriptions: list[tuple[web.WebSocketResponse, int, str, list]] = field(default_factory=list)
    url: str = ""
    ws_url: str = ""

    async def start(self) -> FakeNode:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._http)
        app.router.add_get("/ws", self._ws)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}/rpc"
        self.ws_url = f"ws://127.0.0.1:{port}/ws"
        return self

    async def stop(self) -> None:
        for ws in list(self.ws_clients):
            await ws.close()
        await self._runner.cleanup()

    # -- HTTP --------------------------------------------------------------------------------------
    async def _http(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        self.request_times.append(time.monotonic())
        body = orjson.loads(await request.read())
        if self.request_faults:
            fault = self.request_faults.pop(0)
            resp = await self._fault(request, fault, body)
            if resp is not None:
                return resp
        if isinstance(body, list):
            out = [self._answer(c) for c in body]
            out.reverse()  # batch answers may come in any order; clients must match by id
        else:
            out = self._answer(body)
        return web.Response(body=orjson.dumps(out), content_type="application/json")

    async def _fault(self, request: web.Request, fault: str, body: Any) -> web.StreamResponse | None:
        if fault.startswith("429"):
            headers = {}
            if ":" in fault:
                headers["Retry-After"] = fault.split(":", 1)[1]
            return web.Response(status=429, text="Too Many Requests", headers=headers)
        if fault in ("500", "502", "503"):
            return web.Response(status=int(fault), text="upstream error")
        if fault == "reset":
            assert request.transport is not None
            request.transport.close()
            return web.Response(status=200)
        if fault == "malformed":
            return web.Response(body=b'{"jsonrpc":"2.0","id":', content_type="application/json")
        if fault == "truncate":
            full = orjson.dumps([self._answer(c) for c in body] if isinstance(body, list) else self._answer(body))
            resp = web.StreamResponse(headers={"Content-Length": str(len(full)),
                                               "Content-Type": "application/json"})
            await resp.prepare(request)
            await resp.write(full[: len(full) // 2])
            assert request.transport is not None
            request.transport.close()
            return resp
        raise AssertionError(f"unknown fault {fault}")

    def _answer(self, call: dict) -> dict:
        method, params = call["method"], call.get("params") or []
        first = params[0] if params else None
        key = (method, first if isinstance(first, str | int) else None)
        self.calls.append(key)
        codes = self.call_faults.get(key)
        if codes:
            code = codes.pop(0)
            return {"jsonrpc": "2.0", "id": call["id"], "error": {"code": code, "message": f"fault {code} slot 77"}}
        handler = self.methods.get(method)
        if handler is None:
            return {"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32601, "message": "Method not found"}}
        return {"jsonrpc": "2.0", "id": call["id"], "result": handler(params)}

    # -- websocket ---------------------------------------------------------------------------------
    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.ws_clients.append(ws)
        try:
            async for msg in ws:
                data = orjson.loads(msg.data)
                sub_id = len(self.ws_subscriptions) + 100
                self.ws_subscriptions.append((ws, sub_id, data["method"], data.get("params") or []))
                await ws.send_bytes(orjson.dumps({"jsonrpc": "2.0", "id": data["id"], "result": sub_id}))
        finally:
            with contextlib.suppress(ValueError):
                self.ws_clients.remove(ws)
        return ws

    async def notify(self, method: str, result: Any) -> int:
        """Send a notification for every live subscription made with `method`; returns how many."""
        note = {"slotSubscribe": "slotNotification", "logsSubscribe": "logsNotification"}[method]
        sent = 0
        for ws, sub_id, m, _ in list(self.ws_subscriptions):
            if m == method and not ws.closed:
                await ws.send_bytes(orjson.dumps({"jsonrpc": "2.0", "method": note,
                                                  "params": {"result": result, "subscription": sub_id}}))
                sent += 1
        return sent

    async def drop_websockets(self) -> None:
        for ws in list(self.ws_clients):
            await ws.close()
        await asyncio.sleep(0)
