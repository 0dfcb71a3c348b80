"""Solana websocket subscriptions (slotSubscribe, logsSubscribe mentions) that reconnect by themselves.

WHY hints only: websocket notifications are lossy by nature (a dropped socket, a node restart, a stalled
stream with the TCP connection still open). The live source uses them to react fast and to know the
tip, and relies on the HTTP reconciliation sweep for completeness. This module therefore optimises for
"always come back" and for telling the consumer when it was away (`connected` events carry an epoch
number; each new epoch means notifications may have been missed and a sweep is due).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson
import structlog

from indexer.rpc.client import RetryPolicy
from indexer.rpc.redact import redact_url

log = structlog.get_logger("indexer.rpc.ws")

_NOTIFICATION_OF = {
    "slotSubscribe": "slotNotification",
    "logsSubscribe": "logsNotification",
    "rootSubscribe": "rootNotification",
    "signatureSubscribe": "signatureNotification",
}


@dataclass(frozen=True)
class Subscription:
    key: str          # caller's name for it, e.g. "slot" or the mentioned address
    method: str       # slotSubscribe | logsSubscribe | rootSubscribe ...
    params: tuple = ()

    @staticmethod
    def slots() -> Subscription:
        return Subscription("slot", "slotSubscribe")

    @staticmethod
    def mentions(address: str, commitment: str = "confirmed") -> Subscription:
        # Solana accepts exactly one address per `mentions` filter, hence one subscription per address.
        return Subscription(address, "logsSubscribe", ({"mentions": [address]}, {"commitment": commitment}))


@dataclass(slots=True)
class WsEvent:
    kind: str                    # "connected" | "disconnected" | "slot" | "logs" | "root"
    key: str = ""
    slot: int | None = None
    value: Any = None            # logs: {"signature", "err", "logs"}; slot: {"slot", "parent", "root"}
    epoch: int = 0               # connection number; a new epoch means notifications may have been missed


@dataclass
class WsStats:
    connects: int = 0
    disconnects: int = 0
    stalls: int = 0
    notifications: int = 0


@dataclass
class WsSubscriber:
    """Keeps `subscriptions` alive on `url` and yields their notifications as WsEvent."""

    url: str
    subscriptions: list[Subscription]
    stall_timeout: float = 10.0          # no frame for this long -> assume a stalled stream, reconnect
    heartbeat: float | None = 15.0       # websocket ping interval (detects dead TCP peers)
    subscribe_timeout: float = 10.0
    backoff: RetryPolicy = field(default_factory=lambda: RetryPolicy(base_delay=0.1, max_delay=5.0))
    stats: WsStats = field(default_factory=WsStats)

    def __post_init__(self) -> None:
        self.safe_url = redact_url(self.url)
        self._ids = itertools.count(1)

    async def events(self) -> AsyncIterator[WsEvent]:
        """Yield events forever (cancel the consuming task, or stop iterating, to end)."""
        epoch = 0
        failures = 0
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.ws_connect(self.url, heartbeat=self.heartbeat,
                                                  max_msg_size=64 * 1024 * 1024) as ws:
                        subs = await self._subscribe(ws)
                        epoch += 1
                        failures = 0
                        self.stats.connects += 1
                        log.info("ws_connected", url=self.safe_url, epoch=epoch, subscriptions=len(subs))
                        yield WsEvent("connected", epoch=epoch)
                        async for event in self._read(ws, subs, epoch):
                            yield event
                except (aiohttp.ClientError, ConnectionError, TimeoutError, OSError, _Stalled,
                        _SubscribeFailed) as exc:
                    if isinstance(exc, _Stalled):
                        self.stats.stalls += 1
                    log.warning("ws_disconnected", url=self.safe_url, epoch=epoch,
                                error=f"{type(exc).__name__}: {exc}")
                self.stats.disconnects += 1
                yield WsEvent("disconnected", epoch=epoch)
                failures += 1
                await asyncio.sleep(self.backoff.delay(min(failures, 8)))

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse) -> dict[int, Subscription]:
        """Send every subscribe request and wait for their ids: subscription id -> Subscription."""
        pending: dict[int, Subscription] = {}
        for sub in self.subscriptions:
            rid = next(self._ids)
            pending[rid] = sub
            # text frames: Solana's pubsub server ignores binary ones
            await ws.send_str(orjson.dumps({"jsonrpc": "2.0", "id": rid, "method": sub.method,
                                            "params": list(sub.params)}).decode())
        subs: dict[int, Subscription] = {}
        async with asyncio.timeout(self.subscribe_timeout):
            while pending:
                msg = await ws.receive()
                data = _payload(msg)
                if data is None:
                    raise _SubscribeFailed(f"socket closed while subscribing ({msg.type})")
                if isinstance(data, dict) and data.get("id") in pending:
                    sub = pending.pop(data["id"])
                    if "error" in data:
                        raise _SubscribeFailed(f"{sub.method} refused: {data['error']}")
                    subs[int(data["result"])] = sub
        return subs

    async def _read(self, ws: aiohttp.ClientWebSocketResponse, subs: dict[int, Subscription],
                    epoch: int) -> AsyncIterator[WsEvent]:
        while True:
            # asyncio.timeout, not asyncio.wait_for: on Python 3.11 wait_for returns the frame instead of
            # raising when a cancellation and a frame arrive in the same instant, so the cancel of a stopping
            # listener was swallowed and the reading loop went on (the crash suite's stuck SIGTERM stops,
            # `listener_stop_stuck` with this receive in the task list); a timeout scope never swallows it.
            try:
                async with asyncio.timeout(self.stall_timeout):
                    msg = await ws.receive()
            except TimeoutError as exc:
                raise _Stalled(f"no frame for {self.stall_timeout}s") from exc
            data = _payload(msg)
            if data is None:
                raise ConnectionError(f"websocket closed ({msg.type})")
            if not isinstance(data, dict) or "params" not in data:
                continue
            params = data["params"]
            sub = subs.get(params.get("subscription"))
            if sub is None:
                continue
            self.stats.notifications += 1
            event = _event(sub, params.get("result"), epoch)
            if event is not None:
                yield event


class _Stalled(Exception):
    pass


class _SubscribeFailed(Exception):
    pass


def _payload(msg: aiohttp.WSMessage) -> Any:
    """Decoded JSON of a frame, `{}` for frames to ignore, None when the socket is closing."""
    if msg.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
        try:
            return orjson.loads(msg.data)
        except orjson.JSONDecodeError:
            return {}
    if msg.type in (aiohttp.WSMsgType.PING, aiohttp.WSMsgType.PONG):
        return {}
    return None


def _event(sub: Subscription, result: Any, epoch: int) -> WsEvent | None:
    if sub.method == "rootSubscribe":
        return WsEvent("root", sub.key, result if isinstance(result, int) else None, result, epoch)
    if not isinstance(result, dict):
        return None
    if sub.method == "slotSubscribe":
        return WsEvent("slot", sub.key, int(result.get("slot", 0)), result, epoch)
    if sub.method == "logsSubscribe":
        ctx = result.get("context") or {}
        return WsEvent("logs", sub.key, ctx.get("slot"), result.get("value") or {}, epoch)
    return WsEvent(_NOTIFICATION_OF.get(sub.method, sub.method), sub.key, None, result, epoch)
