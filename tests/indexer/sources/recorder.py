"""An in-memory Processor: records what the sources hand over and acknowledges it like Kafka would."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from indexer.sources.types import Delivery, FetchedTx, Prepared


@dataclass
class Recorder:
    ack_delay: float = 0.0                 # seconds before a delivery is acknowledged
    fail_after: int | None = None          # make the n-th delivery fail (a Kafka send error)
    txs: list[FetchedTx] = field(default_factory=list)
    statuses: list[dict] = field(default_factory=list)
    on_process: object = None              # optional callable(tx) run after recording

    def _delivery(self, ids: list[str]) -> Delivery:
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if self.fail_after is not None and len(self.txs) >= self.fail_after:
            fut.set_exception(RuntimeError("simulated Kafka send failure"))
        elif self.ack_delay:
            loop.call_later(self.ack_delay, lambda: fut.done() or fut.set_result(None))
        else:
            fut.set_result(None)
        return Delivery(fut, ids, messages=max(1, len(ids)), network="helium")

    def prepare(self, tx: FetchedTx) -> Prepared:
        return Prepared(tx, [tx.signature], [f"{tx.signature}:0"], "helium")

    def submit(self, prepared: Prepared) -> Delivery:
        tx = prepared.tx
        self.txs.append(tx)
        if callable(self.on_process):
            self.on_process(tx)
        return self._delivery(list(prepared.event_ids))

    def process(self, tx: FetchedTx) -> Delivery:
        return self.submit(self.prepare(tx))

    def process_batch(self, txs) -> asyncio.Future:
        futures = [self.process(tx).done for tx in txs]
        return asyncio.ensure_future(asyncio.gather(*futures))

    def publish_status(self, record: dict, network: str = "") -> Delivery:
        self.statuses.append(record)
        return self._delivery([])

    # -- views for assertions --------------------------------------------------------------------
    def signatures(self, source: str | None = None) -> Counter:
        return Counter(t.signature for t in self.txs if source is None or t.source == source)

    def status_of(self) -> dict[str, str]:
        return {s["signature"]: s["status"] for s in self.statuses}
