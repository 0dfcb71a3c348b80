"""What the sources hand to the service, and what they need back.

The sources (backfill, live tail, finalizer) decide WHICH transactions to fetch and WHEN progress may
be recorded. What happens to a transaction (decode, classify, publish) is the service's business
(pipelines.listen), behind the `Processor` protocol: indexer.* never imports pipelines.*.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class SigInfo:
    """One getSignaturesForAddress item."""

    signature: str
    slot: int
    block_time: int | None = None
    err: object | None = None
    status: str | None = None        # confirmationStatus: processed | confirmed | finalized

    @classmethod
    def from_rpc(cls, item: dict) -> SigInfo:
        return cls(item["signature"], int(item["slot"]), item.get("blockTime"), item.get("err"),
                   item.get("confirmationStatus"))


_new = object.__new__


def sig_infos(items: list[dict]) -> list[SigInfo]:
    """[SigInfo.from_rpc(i) for i in items] (the same values) without a dataclass __init__ per item.

    WHY: a backfill lists every transaction once per watched address it touches plus the live
    tail's sweeps (~50k items for 18k transactions in bench/listen.py); two Python calls per item
    were most of the listing's CPU next to the JSON decode."""
    out = []
    append = out.append
    for item in items:
        info = _new(SigInfo)
        info.signature = item["signature"]
        info.slot = int(item["slot"])
        info.block_time = item.get("blockTime")
        info.err = item.get("err")
        info.status = item.get("confirmationStatus")
        append(info)
    return out


@dataclass(slots=True)
class FetchedTx:
    """A transaction ready for decoding. `result` is the raw getTransaction result (base64 encoding)."""

    signature: str
    slot: int
    block_time: int | None
    commitment: str                  # "confirmed" or "finalized": what the events will be labelled
    result: dict
    source: str                      # "backfill" | "live" | "finalizer"


@dataclass(slots=True)
class Delivery:
    """The service's receipt for one transaction (or one status record).

    `done` resolves when Kafka acknowledged every message of it (or fails with the send error).
    `event_ids` are the flow event ids published, needed for the status record.
    """

    done: asyncio.Future
    event_ids: list[str] = field(default_factory=list)
    messages: int = 0
    network: str = ""


@dataclass(slots=True)
class Prepared:
    """A transaction decoded and classified, its messages ready but not yet sent."""

    tx: FetchedTx
    messages: list
    event_ids: list[str]
    network: str = ""


class Processor(Protocol):
    """Implemented by the service: decode + classify + publish, returning delivery receipts.

    prepare() and submit() are separate so that a transaction published at `confirmed` can be
    recorded durably (with its event ids) between the two: if the process dies and the block forks
    away meanwhile, the next run still knows what to retract.
    """

    def prepare(self, tx: FetchedTx) -> Prepared:
        """Decode and classify; no I/O."""
        ...

    def submit(self, prepared: Prepared) -> Delivery:
        """Hand the messages to the producer; must not block on acknowledgements."""
        ...

    def process(self, tx: FetchedTx) -> Delivery:
        """submit(prepare(tx))."""
        ...

    def process_batch(self, txs: Sequence[FetchedTx]) -> asyncio.Future:
        """process() for a whole RPC batch in one synchronous pass (the backfill's hot path); the one
        future resolves when every message of every transaction is acknowledged (or fails)."""
        ...

    def publish_status(self, record: dict, network: str = "") -> Delivery:
        """Submit one status record ({signature, slot, status, event_ids, block_time, schema_version})."""
        ...


@dataclass
class LowerBound:
    """Where the backfill stops (inclusive bounds; None = unbounded on that axis)."""

    from_slot: int | None = None
    since_ts: int | None = None

    def below(self, info: SigInfo) -> bool:
        """Is this signature older than the requested history?"""
        if self.from_slot is not None and info.slot < self.from_slot:
            return True
        return self.since_ts is not None and info.block_time is not None and info.block_time < self.since_ts


LIVE_ACK_LAG_WINDOW = 20_000


@dataclass
class SourceStats:
    """Counters the service exports (Prometheus) and tests assert."""

    txs: Counter = field(default_factory=Counter)            # source -> transactions processed
    listed: Counter = field(default_factory=Counter)         # source -> signatures listed
    dedup_hits: Counter = field(default_factory=Counter)     # source -> signatures already handled
    replayed: int = 0                                        # txs re-sent after a restart (possible dups)
    statuses: Counter = field(default_factory=Counter)       # finalized | retracted | vanished | moved
    sweeps: int = 0
    hints: int = 0
    windows: int = 0
    source_retries: Counter = field(default_factory=Counter)  # operation -> retried RPC failures
    tip_slot: int = 0                                        # newest confirmed slot known
    finalized_slot: int = 0
    newest_processed_slot: int = 0
    backfill_low_slot: int | None = None
    live_slot: int | None = None
    ws_reconnects: int = 0
    # live: seconds from first sight of a transaction (websocket hint at `confirmed`, or sweep listing)
    # to Kafka's acknowledgement of all its messages; the newest 20k, for lag percentiles (a window
    # of minutes on a busy chain; 100k kept 3.2 MiB and took hours of a live run to fill: issue 9)
    live_ack_lag: deque = field(default_factory=lambda: deque(maxlen=LIVE_ACK_LAG_WINDOW))
