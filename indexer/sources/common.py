"""Helpers shared by the sources: patient RPC retries and signature paging."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog

from indexer.rpc import RpcClient, RpcError
from indexer.sources.types import LowerBound, SigInfo, SourceStats, sig_infos

log = structlog.get_logger("indexer.sources")
T = TypeVar("T")


class SourceError(RuntimeError):
    """The chain answered something the sources cannot reconcile; stop rather than skip (fail closed)."""


class Stopped(Exception):
    """Raised inside a source when the stop event fired while it was waiting."""


async def patient(op: Callable[[], Awaitable[T]], *, what: str, stats: SourceStats,
                  stop: asyncio.Event | None = None, max_delay: float = 30.0) -> T:
    """Run an RPC operation until it succeeds.

    WHY unbounded at this level: the RPC client already retried each call a bounded number of times;
    what reaches here is an outage (endpoint down, sustained 429s). A months-long service must ride
    it out and resume where it was, never skip the work. Progress simply does not advance meanwhile,
    and the retries are counted so an operator sees the outage on the dashboard.
    """
    attempt = 0
    while True:
        try:
            return await op()
        except RpcError as exc:
            attempt += 1
            stats.source_retries[what] += 1
            delay = random.uniform(0.5, 1.0) * min(max_delay, 0.2 * 2 ** min(attempt, 10))
            log.warning("source_rpc_failed", op=what, attempt=attempt, error=str(exc), retry_in=round(delay, 2))
            if stop is None:
                await asyncio.sleep(delay)
            else:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=delay)
                    raise Stopped(what) from exc
                except TimeoutError:
                    pass


async def chain_tips(rpc: RpcClient, *, stats: SourceStats, stop: asyncio.Event | None) -> tuple[int, int]:
    """(finalized slot, confirmed slot), asked in one batch so both describe the same moment of the node."""
    res = await patient(lambda: rpc.call_many([("getSlot", [{"commitment": "finalized"}]),
                                               ("getSlot", [{"commitment": "confirmed"}])]),
                        what="getSlot", stats=stats, stop=stop)
    for r in res:
        if isinstance(r, RpcError):
            raise r
    return int(res[0]), int(res[1])


async def list_page(rpc: RpcClient, address: str, *, before: str | None, until: str | None, limit: int,
                    commitment: str, stats: SourceStats, stop: asyncio.Event | None,
                    what: str) -> list[SigInfo]:
    items = await patient(lambda: rpc.get_signatures_for_address(
        address, before=before, until=until, limit=limit, commitment=commitment),
        what=what, stats=stats, stop=stop)
    return sig_infos(items)


class AddressPager:
    """Walks one address's signature history downward (newest -> oldest) within a lower bound.

    Starts either at an inclusive `first` item (the seam, known from the checkpoint) followed by the
    history before it, or directly `before` a signature. `exhausted` turns True at the first item
    below the lower bound or at a short page (the history ended).
    """

    def __init__(self, rpc: RpcClient, address: str, *, first: SigInfo | None, before: str | None,
                 lower: LowerBound, limit: int, stats: SourceStats, stop: asyncio.Event | None,
                 commitment: str = "finalized") -> None:
        self.rpc = rpc
        self.address = address
        self._first = first
        self._before = first.signature if first is not None else before
        self.lower = lower
        self.limit = limit
        self.stats = stats
        self.stop = stop
        self.commitment = commitment
        self.exhausted = False
        if first is not None and lower.below(first):
            self._first = None
            self.exhausted = True

    async def next_page(self) -> list[SigInfo]:
        if self.exhausted:
            return []
        out: list[SigInfo] = []
        if self._first is not None:
            out.append(self._first)
            self._first = None
        page = await list_page(self.rpc, self.address, before=self._before, until=None, limit=self.limit,
                               commitment=self.commitment, stats=self.stats, stop=self.stop,
                               what="getSignaturesForAddress:backfill")
        self.stats.listed["backfill"] += len(page)
        if len(page) < self.limit:
            self.exhausted = True
        for info in page:
            if self.lower.below(info):
                self.exhausted = True
                break
            out.append(info)
        if page:
            self._before = page[-1].signature
        return out


async def find_seam(rpc: RpcClient, address: str, seam_slot: int, *, limit: int, stats: SourceStats,
                    stop: asyncio.Event | None) -> SigInfo | None:
    """The newest finalized signature of `address` with slot <= seam_slot (None: it has none)."""
    before: str | None = None
    while True:
        page = await list_page(rpc, address, before=before, until=None, limit=limit, commitment="finalized",
                               stats=stats, stop=stop, what="getSignaturesForAddress:seam")
        for info in page:
            if info.slot <= seam_slot:
                return info
        if len(page) < limit:
            return None
        before = page[-1].signature
