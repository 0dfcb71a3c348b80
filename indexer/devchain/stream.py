"""A chain that is generated while it is served: long runs in bounded memory.

`generate_ledger` keeps every block, every transaction record and every expected event; that is
right for tests (a few thousand transactions) and impossible for a million-event soak. Here:

- `LedgerStream` pulls blocks one at a time from the same generator (`_Generator.iter_blocks`),
  so a SimConfig yields the same bytes as `generate_ledger`, and keeps the ground truth as running
  totals (`TruthTotals`, the `truth_lines` shape) instead of one dict per event.
- `StreamingServer` is the ordinary JSON-RPC + websocket server (`DevchainServer`: same methods,
  errors, commitments, forks, subscriptions) over a chain that grows at the tip and forgets its
  oldest blocks, like a node with limited local ledger retention: after `retention_blocks` a block,
  its transactions and its index entries are dropped (getBlock answers -32009, getTransaction null,
  getSignaturesForAddress stops listing them). Positions keep their meaning because the position-
  indexed structures are `Window`s (absolute indexes, the front dropped).
- Pacing: a new block is produced every `block_interval` seconds (0 = as fast as it is generated),
  but never more than `max_ahead` blocks beyond the newest block a client fetched a transaction of,
  nor more than 2 * `max_ahead` + FINAL_LAG beyond the newest block a client saw finalized (asked
  its status after finalization, or fetched it final), nor (once a client calls `devchain_pace`) more
  than that beyond the slot the client declared done - so a listener's finalizer backlog is bounded too.
  WHY: a memory soak must not lose data because a listener sharing two cores fell behind the
  retention window; a real cluster does not wait, but a benchmark that measures memory should not
  turn into a throughput race. `max_ahead=None` disables it (the chain runs free).

The stream ends after `max_events` flow events (or when the configured days are exhausted); then
every block is finalized, the chain stops, and `devchain_stream` reports `finished`.
Control methods (not Solana): `devchain_stream` (progress counters), `devchain_truth` (the totals),
`devchain_stop` (end the stream early: a time-boxed run), `devchain_pace` (a client's done slot),
`devchain_truth_ids` (the event ids of one truth line, streams with keep_ids: a diagnostic).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict

from indexer.devchain.faults import FaultConfig
from indexer.devchain.ledger import Block, Ledger, SimConfig, _Generator
from indexer.devchain.server import FINAL_LAG, DevchainServer

_TRUTH_KEYS = ("network", "day", "flow_class", "subtype", "mint")


class TruthTotals:
    """Ground truth as sums per (network, day, flow_class, subtype, mint), for both discoveries.

    Same lines as `Ledger.truth_lines` (forked events never count); memory is the number of
    distinct lines (a few dozen per simulated day), not the number of events."""

    def __init__(self, keep_ids: bool = False) -> None:
        self.sums: dict[str, dict[tuple, int]] = {"all": defaultdict(int), "addresses": defaultdict(int)}
        self.events = {"all": 0, "addresses": 0}        # canonical (finalized) events counted
        self.forked_events = 0
        self._watched: frozenset[str] | None = None
        # Diagnostic (keep_ids): the event ids behind each "addresses" line, so a mismatch can be traced
        # to the events missing or extra (~150 bytes per event: opt-in, not for memory soaks).
        self.ids: dict[tuple, list[tuple[str, str, int, int]]] | None = defaultdict(list) if keep_ids else None

    def _watched_set(self) -> frozenset[str]:
        if self._watched is None:
            from indexer.networks.watch import watched_addresses

            self._watched = frozenset(a for addrs in watched_addresses().values() for a in addrs)
        return self._watched

    def add_block(self, block: Block, events: list[dict]) -> None:
        if block.forked:
            self.forked_events += len(events)
            return
        if not events:
            return
        watched = self._watched_set()
        found: dict[str, bool] = {}
        keys_of = {tx.signature: tx for tx in block.transactions}
        for e in events:
            sig = e["signature"]
            disc = found.get(sig)
            if disc is None:
                disc = found[sig] = not watched.isdisjoint(keys_of[sig].account_keys)
            key = (e["network"], e["day"], e["flow_class"], e["subtype"], e["mint"])
            self.sums["all"][key] += e["amount_raw"]
            self.events["all"] += 1
            if disc:
                self.sums["addresses"][key] += e["amount_raw"]
                self.events["addresses"] += 1
                if self.ids is not None:
                    self.ids[key].append((e["event_id"], sig, block.slot, e["amount_raw"]))

    def line_ids(self, key: tuple) -> list[dict]:
        """The events (id, signature, slot, amount_raw) of one "addresses" line (keep_ids only)."""
        if self.ids is None:
            raise ValueError("event ids are not kept: LedgerStream(..., keep_ids=True)")
        return [{"event_id": i, "signature": s, "slot": slot, "amount_raw": a}
                for i, s, slot, a in self.ids.get(tuple(key), [])]

    def lines(self, discovery: str = "all") -> list[dict]:
        if discovery not in self.sums:
            raise ValueError(f"discovery must be 'all' or 'addresses', not {discovery!r}")
        return [dict(zip(_TRUTH_KEYS, k, strict=True)) | {"amount_raw": v}
                for k, v in sorted(self.sums[discovery].items())]


class LedgerStream:
    """Blocks of a SimConfig, one at a time, with running truth totals and counters."""

    def __init__(self, config: SimConfig, max_events: int | None = None, count: str = "all",
                 keep_ids: bool = False) -> None:
        """`max_events` bounds the events generated (`count="all"`, forked ones included) or the
        finalized events a listener discovering through addresses can see (`count="addresses"`).
        `keep_ids`: also keep the event ids behind each line (TruthTotals.line_ids), a diagnostic."""
        if count not in ("all", "addresses"):
            raise ValueError(f"count must be 'all' or 'addresses', not {count!r}")
        self.config = config
        self.max_events = max_events
        self.count = count
        self._gen = _Generator(config)
        self._it = self._gen.iter_blocks()
        self.truth = TruthTotals(keep_ids)
        self.blocks = 0
        self.transactions = 0
        self.events = 0                 # every event generated, forked ones included
        self.exhausted = False

    @property
    def tokens(self):
        return self._gen.ctx.tokens

    @property
    def lookup(self):
        return self._gen.ctx.lookup

    def next_block(self) -> Block | None:
        """The next block, or None once `max_events` is reached or the configured days are over."""
        if self.exhausted:
            return None
        counted = self.events if self.count == "all" else self.truth.events["addresses"]
        if self.max_events is not None and counted >= self.max_events:
            self.exhausted = True
            return None
        try:
            block, events = next(self._it)
        except StopIteration:
            self.exhausted = True
            return None
        self.truth.add_block(block, events)
        self.blocks += 1
        self.transactions += len(block.transactions)
        self.events += len(events)
        return block


class Window:
    """A list indexed by absolute position whose oldest items can be dropped.

    Reading a dropped position returns `filler` (chosen by the owner to sort before every kept
    item, so `bisect` over a Window still works) instead of raising."""

    __slots__ = ("base", "items", "filler")

    def __init__(self, filler, items=()) -> None:
        self.base = 0
        self.items = list(items)
        self.filler = filler

    def __len__(self) -> int:
        return self.base + len(self.items)

    def __getitem__(self, i: int):
        if i < 0:
            i += self.base + len(self.items)
        if i < self.base:
            if i < 0:
                raise IndexError(i)
            return self.filler
        return self.items[i - self.base]

    def __iter__(self):
        return iter(self.items)

    def append(self, item) -> None:
        self.items.append(item)

    def drop_before(self, position: int) -> list:
        """Forget every item below `position`; returns the dropped items."""
        k = position - self.base
        if k <= 0:
            return []
        dropped = self.items[:k]
        del self.items[:k]
        self.base += len(dropped)
        return dropped


_PRUNED = Block(slot=-1, parent_slot=-1, blockhash="", previous_blockhash="", block_time=0, block_height=0,
                transactions=[], forked=True)


class StreamingServer(DevchainServer):
    """`DevchainServer` over a `LedgerStream` that grows at the tip and forgets old blocks."""

    def __init__(self, stream: LedgerStream, faults: FaultConfig | None = None, *, block_interval: float = 0.0,
                 max_ahead: int | None = 64, retention_blocks: int = 1000, prune_every: int = 100) -> None:
        if retention_blocks < 4 * FINAL_LAG:
            raise ValueError(f"retention_blocks must be >= {4 * FINAL_LAG}")
        self.stream = stream
        self.block_interval = block_interval
        self.max_ahead = max_ahead
        self.retention_blocks = retention_blocks
        self.prune_every = prune_every
        ledger = Ledger(stream.config)
        ledger.tokens = stream.tokens
        ledger.lookup = stream.lookup
        first = stream.next_block()
        if first is None:
            raise ValueError("the stream produced no block")
        ledger.blocks = Window(_PRUNED, [first])
        ledger.by_slot = {first.slot: first}
        super().__init__(ledger, faults, realtime=False, start_at=1)
        self.fetched_pos = -1            # newest block position a client fetched a transaction of
        self.resolved_pos = -1           # ... and of which a client saw the transaction finalized
        self.paced_pos: int | None = None    # position of the slot a client declared done (devchain_pace)
        self.pace_blocks = 2 * (max_ahead or 0) + FINAL_LAG
        self.finished = False
        self.started_at = time.time()
        self.finished_at: float | None = None
        self.pruned_blocks = 0
        self._uncached = 0               # blocks below this position had their render caches dropped
        self._producer: asyncio.Task | None = None
        self.methods["devchain_stream"] = self._rpc_stream
        self.methods["devchain_truth"] = self._rpc_truth
        self.methods["devchain_stop"] = self._rpc_stop
        self.methods["devchain_pace"] = self._rpc_pace
        self.methods["devchain_truth_ids"] = self._rpc_truth_ids

    # -- indexes: the base class's structures, as Windows --------------------------------------------
    def _build_indexes(self) -> None:
        self._slots = Window(-1)
        self.tx_pos = Window(-1)
        self.tx_loc = Window((0, 0))
        self.sig_seq = {}
        self.by_address = {}
        for pos, block in enumerate(self.blocks):
            self._index_block(pos, block)

    def _index_block(self, pos: int, block: Block) -> None:
        self._slots.append(block.slot)
        self._index_transactions(pos, block)

    # -- growth and retention ---------------------------------------------------------------------
    def produce(self) -> bool:
        """Append the next block of the stream (False when the stream is over)."""
        block = self.stream.next_block()
        if block is None:
            return False
        pos = len(self.blocks)
        self.blocks.append(block)
        self.ledger.by_slot[block.slot] = block
        self._index_block(pos, block)
        return True

    def prune(self) -> int:
        """Drop blocks older than `retention_blocks` below the tip; returns how many were dropped.

        Also forgets the rendered getTransaction JSON of blocks well below the finalized tip (a
        listener fetches a transaction once or twice around confirmation; the cache is for that)."""
        cold = max(0, self.tip - 2 * FINAL_LAG - (self.max_ahead or 0))
        for pos in range(max(self._uncached, self.blocks.base), cold):
            for tx in self.blocks[pos].transactions:
                tx.parsed_cache.clear()
        self._uncached = max(self._uncached, cold)
        keep_from = max(0, min(len(self.blocks), self.tip) - self.retention_blocks)
        if keep_from <= self.blocks.base:
            return 0
        first_seq = self._first_kept_seq(keep_from)
        dropped = self.blocks.drop_before(keep_from)
        self._slots.drop_before(keep_from)
        keys: set[str] = set()
        for block in dropped:
            self.ledger.by_slot.pop(block.slot, None)
            for tx in block.transactions:
                self.sig_seq.pop(tx.signature, None)
                keys.update(tx.account_keys)
        for key in keys:                   # one cut per address (not per transaction: lists are long)
            lst = self.by_address.get(key)
            if lst is None:
                continue
            cut = _count_below(lst, first_seq)
            if cut == len(lst):
                del self.by_address[key]
            elif cut:
                del lst[:cut]
        self.tx_pos.drop_before(first_seq)
        self.tx_loc.drop_before(first_seq)
        self._cache.clear()
        self.first_available_slot = self.blocks[keep_from].slot
        self.pruned_blocks += len(dropped)
        return len(dropped)

    def _first_kept_seq(self, pos: int) -> int:
        import bisect

        return bisect.bisect_left(self.tx_pos, pos)

    def _ahead_ok(self) -> bool:
        lead = self.tip - 1
        if self.paced_pos is not None and lead - self.paced_pos >= self.pace_blocks:
            return False
        if self.max_ahead is None:
            return True
        return lead - self.fetched_pos < self.max_ahead and lead - self.resolved_pos < 2 * self.max_ahead + FINAL_LAG

    async def _produce_loop(self) -> None:
        since_prune = 0
        while True:
            if self.block_interval:
                await asyncio.sleep(self.block_interval)
            else:
                await asyncio.sleep(0)
            if not self._ahead_ok():
                await asyncio.sleep(0.01)
                continue
            if self.tip >= len(self.blocks) and not self.produce():
                break
            self.advance(1)
            since_prune += 1
            if since_prune >= self.prune_every:
                self.prune()
                since_prune = 0
        self.finalize_all()
        self.finished = True
        self.finished_at = time.time()

    async def _on_startup(self, app) -> None:
        self._producer = asyncio.get_running_loop().create_task(self._produce_loop())

    async def _on_shutdown(self, app) -> None:
        if self._producer:
            self._producer.cancel()
        await super()._on_shutdown(app)

    # -- what clients fetch moves the pacing -------------------------------------------------------
    def get_transaction(self, sig, cfg=None):
        out = super().get_transaction(sig, cfg)
        seq = self.sig_seq.get(sig) if isinstance(sig, str) else None
        if seq is not None and out is not None:
            pos = self.tx_loc[seq][0]
            self.fetched_pos = max(self.fetched_pos, pos)
            if pos < self.limit("finalized"):           # fetched final: nothing left to resolve
                self.resolved_pos = max(self.resolved_pos, pos)
        return out

    def get_signature_statuses(self, sigs, cfg=None):
        out = super().get_signature_statuses(sigs, cfg)
        final = self.limit("finalized")
        for sig in sigs:
            seq = self.sig_seq.get(sig) if isinstance(sig, str) else None
            if seq is not None and self.tx_loc[seq][0] < final:
                self.resolved_pos = max(self.resolved_pos, self.tx_loc[seq][0])
        return out

    # -- control ----------------------------------------------------------------------------------
    def _rpc_stream(self):
        s = self.stream
        return {"blocks": s.blocks, "transactions": s.transactions, "events": s.events,
                "events_final": s.truth.events["all"], "events_addresses": s.truth.events["addresses"],
                "forked_events": s.truth.forked_events, "tip_slot": self.tip_slot("processed"),
                "retained_blocks": len(self.blocks.items), "pruned_blocks": self.pruned_blocks,
                "ahead_blocks": self.tip - 1 - self.fetched_pos, "unresolved_blocks": self.tip - 1 - self.resolved_pos,
                "unpaced_blocks": None if self.paced_pos is None else self.tip - 1 - self.paced_pos,
                "finished": self.finished,
                "seconds": (self.finished_at or time.time()) - self.started_at}

    def _rpc_pace(self, slot):
        """A client says everything through `slot` is done (e.g. a listener's durable live position):
        the chain stays within 2 * max_ahead + FINAL_LAG blocks of it. WHY: what a client fetched or
        asked about is not what it finished; a listener whose finalization lags keeps every
        unresolved transaction in memory, and a memory soak must measure a listener that keeps up."""
        import bisect

        self.paced_pos = max(self.blocks.base, bisect.bisect_right(self._slots, int(slot)) - 1)
        return self.paced_pos

    def _rpc_stop(self):
        """End the stream now: no new block; the produced ones are finalized (truth = what was produced)."""
        self.stream.exhausted = True
        return True

    def _rpc_truth(self, discovery="addresses"):
        return self.stream.truth.lines(discovery)

    def _rpc_truth_ids(self, network, day, flow_class, subtype, mint):
        """The events behind one "addresses" truth line (a stream started with keep_ids): what a
        mismatch is made of, to find where each missing event got lost."""
        return self.stream.truth.line_ids((network, day, flow_class, subtype, mint))


def _count_below(seqs: list[int], first: int) -> int:
    import bisect

    return bisect.bisect_left(seqs, first)


async def start_streaming(stream: LedgerStream, host: str = "127.0.0.1", port: int = 0, **kwargs):
    """Start a StreamingServer on the running loop; returns (server, runner, port)."""
    from aiohttp import web

    server = StreamingServer(stream, **kwargs)
    runner = web.AppRunner(server.app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return server, runner, site._server.sockets[0].getsockname()[1]


def serve_stream(config: SimConfig, *, port: int, host: str = "127.0.0.1", max_events: int | None = None,
                 count: str = "all", keep_ids: bool = False, **kwargs) -> None:
    """Serve a stream until interrupted (the long-run benchmark's simulator process)."""

    async def main() -> None:
        stream = LedgerStream(config, max_events=max_events, count=count, keep_ids=keep_ids)
        _server, runner, _port = await start_streaming(stream, host, port, **kwargs)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


def stream_in_thread(stream: LedgerStream, host: str = "127.0.0.1", port: int = 0, **kwargs):
    """A StreamingServer on its own event-loop thread (tests); returns a `ServerHandle`."""
    from indexer.devchain.server import run_in_thread

    return run_in_thread(lambda: start_streaming(stream, host, port, **kwargs), host, "devchain-stream")
