"""Finalizer: promotes confirmed transactions once their slot is finalized, retracts the ones that forked.

WHY observed status, not "32 slots later": finality is whatever the cluster finalized (and will change
with Alpenglow); peers that assume a fixed depth publish forked data as final (peers.md §4). For every
published-at-confirmed transaction whose slot is at or below the finalized slot, the finalizer asks
getSignatureStatuses (searchTransactionHistory):
- finalized in the same slot            -> status "finalized"
- finalized in another slot (re-included after a fork) -> republish the transaction's events from the
  finalized copy, then status "finalized" with the new slot
- unknown -> confirm with getTransaction at `finalized`: still absent -> status "retracted"
  (the sink marks the events deleted); present -> treated as above
- anything else (the node has not caught up) -> asked again next round.
A status record is published only for transactions that published something.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from indexer.checkpoint import Checkpoint
from indexer.networks.events import SCHEMA_VERSION
from indexer.rpc import RpcClient, RpcError
from indexer.sources.common import SourceError, chain_tips, patient
from indexer.sources.types import Delivery, FetchedTx, Prepared, Processor, SourceStats

log = structlog.get_logger("indexer.sources.finalizer")


@dataclass(slots=True)
class _Pending:
    signature: str
    slot: int
    block_time: int | None
    delivery: Delivery
    future: asyncio.Future


def status_record(signature: str, slot: int, status: str, event_ids: list[str],
                  block_time: int | None) -> dict:
    return {"signature": signature, "slot": slot, "status": status, "event_ids": list(event_ids),
            "block_time": block_time, "schema_version": SCHEMA_VERSION}


class PrunedError(SourceError):
    """A transaction's slot is below the node's first available block: fork or purge cannot be told."""


async def raise_if_pruned(rpc: RpcClient, signature: str, slot: int, stats: SourceStats,
                          stop: asyncio.Event | None) -> None:
    """Raise PrunedError when `slot` is below the node's first available block (getFirstAvailableBlock).

    WHY: an unknown signature is a fork only if the node still holds its slot. A node with limited
    ledger retention answers getTransaction null and getSignatureStatuses null for a canonical
    transaction it purged too; treating that as a fork would drop (live tail) or retract (finalizer)
    real events without a trace (issue 9). Fail closed instead: nothing is acknowledged past it."""
    first = int(await patient(lambda: rpc.call("getFirstAvailableBlock", []), what="getFirstAvailableBlock",
                              stats=stats, stop=stop))
    if slot < first:
        log.error("tx_beyond_retention", signature=signature, slot=slot, first_available=first)
        raise PrunedError(f"{signature} (slot {slot}) is unknown to the node and below its first available "
                          f"block {first}: cannot tell a fork from a purge; use a node that keeps slot {slot}")


class PendingLog:
    """Write-ahead record (in the checkpoint) of what was published at `confirmed` and is unresolved.

    WHY: a transaction published at confirmed whose block forks away while the listener is down would
    otherwise never be retracted: the restarted listener cannot list it any more (it vanished) and
    does not know it was published. So its event ids are made durable before its messages are sent;
    concurrent callers share one checkpoint write (group commit), and the entry is dropped once the
    status record is acknowledged.
    """

    def __init__(self, checkpoint: Checkpoint, save: Callable[[], None] | None) -> None:
        self.cp = checkpoint
        self._save = save
        self._flush: asyncio.Task | None = None
        self.writes = 0

    async def add(self, prepared: Prepared) -> None:
        tx = prepared.tx
        self.cp.pending[tx.signature] = {"slot": tx.slot, "block_time": tx.block_time,
                                         "event_ids": list(prepared.event_ids), "network": prepared.network,
                                         "messages": len(prepared.messages)}
        if self._save is None:
            return
        if self._flush is None or self._flush.done():
            self._flush = asyncio.create_task(self._write())
        await asyncio.shield(self._flush)

    async def _write(self) -> None:
        await asyncio.sleep(0)  # let the other transactions of this burst join the same write
        assert self._save is not None
        self._save()
        self.writes += 1

    def remove(self, signature: str) -> None:
        self.cp.pending.pop(signature, None)  # durable with the next checkpoint write


class Finalizer:
    def __init__(self, rpc: RpcClient, processor: Processor, stats: SourceStats, stop: asyncio.Event,
                 encoding: str = "base64", log_: PendingLog | None = None) -> None:
        self.rpc = rpc
        self.processor = processor
        self.stats = stats
        self.stop = stop
        self.encoding = encoding
        self.finalized_slot = 0
        self.pending: dict[str, _Pending] = {}
        self.log = log_

    async def publish_confirmed(self, prepared: Prepared) -> Delivery:
        """Record the transaction as pending (durably), then send its messages."""
        if self.log is not None and prepared.messages:
            await self.log.add(prepared)
        return self.processor.submit(prepared)

    def resume(self) -> int:
        """Track again what a previous run published at confirmed and did not resolve."""
        if self.log is None:
            return 0
        loop = asyncio.get_running_loop()
        for sig, entry in list(self.log.cp.pending.items()):
            done = loop.create_future()
            done.set_result(None)
            delivery = Delivery(done, list(entry.get("event_ids") or []), int(entry.get("messages") or 1),
                                entry.get("network") or "")
            self.pending[sig] = _Pending(sig, int(entry["slot"]), entry.get("block_time"), delivery,
                                         loop.create_future())
        if self.pending:
            log.info("finalizer_resumed", pending=len(self.pending))
        return len(self.pending)

    async def resolve(self, signature: str, slot: int, block_time: int | None, delivery: Delivery) -> str:
        """Wait until the transaction is finalized or retracted (and its status record acknowledged)."""
        fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self.pending[signature] = _Pending(signature, slot, block_time, delivery, fut)
        return await fut

    async def _slots(self) -> tuple[int, int]:
        return await chain_tips(self.rpc, stats=self.stats, stop=self.stop)

    async def round(self) -> int:
        """One pass; returns how many transactions were resolved."""
        try:
            finalized, confirmed = await self._slots()
        except RpcError as exc:
            log.warning("finalizer_slots_failed", error=str(exc))
            return 0
        self.finalized_slot = max(self.finalized_slot, finalized)
        self.stats.finalized_slot = self.finalized_slot
        self.stats.tip_slot = max(self.stats.tip_slot, confirmed)
        due = [p for p in self.pending.values() if p.slot <= self.finalized_slot]
        if not due:
            return 0
        statuses = await patient(lambda: self.rpc.get_signature_statuses([p.signature for p in due]),
                                 what="getSignatureStatuses", stats=self.stats, stop=self.stop)
        waits = []
        for p, st in zip(due, statuses, strict=True):
            decision = await self._decide(p, st)
            if decision is not None:
                waits.append(self._publish(p, *decision))
        if waits:
            await asyncio.gather(*waits)
        return len(waits)

    async def _decide(self, p: _Pending, st: dict | None) -> tuple[str, int, list[str], int | None] | None:
        """(status, slot, event_ids, block_time) to publish, or None to ask again later."""
        if st is not None and st.get("confirmationStatus") != "finalized" and st.get("confirmations") is not None:
            return None  # the node has not finalized it yet
        if st is None:
            tx = await patient(lambda: self.rpc.get_transaction(p.signature, "finalized", self.encoding),
                               what="getTransaction:finalizer", stats=self.stats, stop=self.stop)
            if tx is None:
                await raise_if_pruned(self.rpc, p.signature, p.slot, self.stats, self.stop)
                self.stats.statuses["retracted"] += 1
                return "retracted", p.slot, p.delivery.event_ids, p.block_time
            slot = int(tx["slot"])
        else:
            slot = int(st["slot"])
            tx = None
        if slot == p.slot:
            self.stats.statuses["finalized"] += 1
            return "finalized", p.slot, p.delivery.event_ids, p.block_time
        # Re-included in another slot: the finalized copy is the truth; republish it, then promote it.
        if tx is None:
            tx = await patient(lambda: self.rpc.get_transaction(p.signature, "finalized", self.encoding),
                               what="getTransaction:finalizer", stats=self.stats, stop=self.stop)
            if tx is None:
                return None
        block_time = tx.get("blockTime")
        redo = self.processor.process(FetchedTx(p.signature, slot, block_time, "finalized", tx, "finalizer"))
        await redo.done
        self.stats.statuses["moved"] += 1
        log.info("tx_moved", signature=p.signature, old_slot=p.slot, new_slot=slot)
        p.delivery = redo
        return "finalized", slot, redo.event_ids, block_time

    async def _publish(self, p: _Pending, status: str, slot: int, event_ids: list[str],
                       block_time: int | None) -> None:
        outcome = status if slot == p.slot or status != "finalized" else "moved"
        if p.delivery.messages:
            receipt = self.processor.publish_status(status_record(p.signature, slot, status, event_ids,
                                                                  block_time), p.delivery.network)
            try:
                await receipt.done
            except BaseException as exc:
                if not p.future.done():
                    p.future.set_exception(exc)
                self.pending.pop(p.signature, None)
                return
        self.pending.pop(p.signature, None)
        if self.log is not None:
            self.log.remove(p.signature)
        if not p.future.done():
            p.future.set_result(outcome)
