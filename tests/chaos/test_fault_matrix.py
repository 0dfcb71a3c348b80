"""RPC fault matrix: every fault the chain simulator can inject, alone and mixed, through the real
listener into the real broker. The published set (deduplicated by event_id, statuses applied) must
equal the simulator's ground truth exactly in every case; what each fault costs is measured against
the fault-free run of the same shape and printed as a table (`pytest tests/chaos -k matrix -s`).

Backfill cases (history, everything finalized) time the whole catch-up: the extra seconds over the
fault-free run are the time spent recovering from that fault. Live cases (blocks arriving while the
listener follows, websocket hints + reconciliation sweeps, forks) measure the lag from a block being
confirmed to its events being published (Kafka record timestamp), and the catch-up after the last
block. -32007/-32009 are the simulator's skipped-slot answers; the listener only asks for slots it has just
listed, so it meets them only if a listed fork vanishes before the fetch: the live block-walking case
counts them (see the case's comment).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import orjson
import pytest

from indexer.devchain import FaultConfig, SimConfig, generate_ledger, serve_in_thread
from indexer.devchain.server import CONFIRMED_LAG
from pipelines.listen.config import ListenerConfig
from pipelines.listen.service import Listener
from tests.chaos.harness import LONG
from tests.kafkaread import read_topic

RATE = float(os.environ.get("DEPINFLOW_FAULT_RATE", "0.25"))   # "high": a quarter of all requests


class CountingFaults(FaultConfig):
    """The simulator's own fault injection, counting what it injected (for the table)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.injected: Counter = Counter()

    def decide(self, method: str):
        d = super().decide(method)
        if d.kind:
            self.injected[d.kind] += 1
        elif d.latency_ms:
            self.injected["latency"] += 1
        return d

    def decide_ws(self):
        action = super().decide_ws()
        if action:
            self.injected[f"ws_{action}"] += 1
        return action


@dataclass
class Case:
    name: str
    shape: str                                  # backfill | blocks | live | live-blocks
    methods: dict = field(default_factory=dict)
    websocket: dict = field(default_factory=dict)
    server: dict = field(default_factory=dict)  # serve_in_thread kwargs (local_retention_slots)
    listener: dict = field(default_factory=dict)  # ListenerConfig overrides
    step: int = 4                               # live: blocks per 0.1 s (4 = 40 blocks/s)
    live_blocks: int | None = None              # live: blocks produced while following (default LIVE_BLOCKS)


ALL_HTTP = {"http_429": RATE / 3, "retry_after": 1, "http_5xx": RATE / 3, "reset": RATE / 3,
            "truncate": RATE / 3, "malformed": RATE / 3, "node_unhealthy": RATE / 3,
            "latency_ms": 150, "latency_rate": RATE}
CASES = [
    Case("none", "backfill"),
    Case("http_429 (Retry-After 1s)", "backfill", {"*": {"http_429": RATE, "retry_after": 1}}),
    Case("http_5xx", "backfill", {"*": {"http_5xx": RATE}}),
    Case("connection reset", "backfill", {"*": {"reset": RATE}}),
    Case("latency 150-450ms", "backfill", {"*": {"latency_ms": 300, "latency_rate": 2 * RATE}}),
    Case("truncated JSON", "backfill", {"*": {"truncate": RATE}}),
    Case("malformed JSON", "backfill", {"*": {"malformed": RATE}}),
    Case("-32005 node unhealthy", "backfill", {"*": {"node_unhealthy": RATE}}),
    Case("mixed (all HTTP faults)", "backfill", {"*": ALL_HTTP}),
    Case("none", "blocks"),
    # the simulator injects -32004 into single getBlock requests (a JSON-RPC batch is one "batch" request)
    Case("-32004 block not available", "blocks", {"getBlock": {"block_not_available": RATE}},
         listener={"rpc_use_batches": False}),
    Case("none", "live"),
    Case("websocket drop", "live", websocket={"drop_rate": RATE / 5}),
    # a stalled stream is detected after the listener's stall timeout (ws_stall_timeout, 3 s here, 10 s by
    # default): the run is long enough to see it happen
    Case("websocket stall 30s", "live", websocket={"stall_rate": RATE / 10, "stall_seconds": 30}, live_blocks=640,
         listener={"ws_stall_timeout": 3.0}),
    Case("mixed (HTTP + websocket)", "live", {"*": ALL_HTTP}, {"drop_rate": RATE / 10, "stall_rate": RATE / 20,
                                                               "stall_seconds": 30},
         listener={"ws_stall_timeout": 3.0}),
    # forks that vanish while a block-walking listener follows: where -32007/-32009 could arise. The
    # listener lists (getBlocks) right before it fetches and decides finality by listing again, so it
    # does not ask for a skipped slot; the table shows how many it met (client mapping of both codes:
    # tests/indexer/rpc/test_client.py).
    Case("forks vanish (-32007/-32009?)", "live-blocks"),
]
LIVE_BLOCKS = 600 if LONG else 240
LIVE_PAUSE = 0.1                        # case.step blocks per pause (default 40 blocks/s, 16x Solana's cadence)
RESULTS: dict[tuple[str, str], dict] = {}
CATCH_UP_TIMEOUT = float(os.environ.get("DEPINFLOW_CATCH_UP_TIMEOUT", "120"))


@pytest.fixture(scope="module")
def ledger():
    return generate_ledger(SimConfig(seed=31, slots_per_day=2400 if LONG else 900))


@pytest.fixture(scope="module", autouse=True)
def table():
    yield
    if RESULTS:
        print("\n" + render_table())


def config(node, bootstrap: str, prefix: str, tmp_path, **kw) -> ListenerConfig:
    base = dict(rpc_url=node.url, ws_url=node.ws_url, bootstrap=bootstrap, topic_prefix=prefix,
                checkpoint=str(tmp_path / f"{prefix}.json"), progress="off", sweep_interval=0.3,
                finalize_interval=0.1, checkpoint_interval=0.2, rpc_batch=50)
    base.update(kw)
    return ListenerConfig(**base)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("case", CASES, ids=[f"{c.shape}:{c.name}" for c in CASES])
def test_fault_matrix(case: Case, ledger, bootstrap, unique_name, tmp_path):
    faults = None
    if case.methods or case.websocket:
        faults = CountingFaults.from_dict({"seed": 17, "methods": case.methods, "websocket": case.websocket})
    prefix = unique_name("fm")
    mode = "blocks" if case.shape in ("blocks", "live-blocks") else "addresses"
    started = time.monotonic()
    if case.shape in ("backfill", "blocks"):
        with serve_in_thread(ledger, faults=faults, **case.server) as node:
            extra = {"mode": "blocks", "from_slot": ledger.first_slot} if mode == "blocks" else {}
            listener = Listener(config(node, bootstrap, prefix, tmp_path, websocket=False, **extra, **case.listener))
            listener.run_until_caught_up(timeout=420)
        lags: list[float] = []
        drain = 0.0
    else:
        listener, lags, drain = run_live(case, ledger, faults, bootstrap, prefix, tmp_path, mode)
    seconds = time.monotonic() - started
    published = published_totals(bootstrap, prefix)
    truth = {(t["network"], t["day"], t["flow_class"], t["subtype"], t["mint"]): t["amount_raw"]
             for t in ledger.truth_lines("all" if mode == "blocks" else "addresses")}
    rs = listener.rpc_stats
    RESULTS[(case.shape, case.name)] = {
        "seconds": seconds, "injected": dict(faults.injected) if faults else {}, "lags": lags, "drain": drain,
        "retries": rs.total_retries(), "errors": dict(Counter({c: n for (_m, c), n in rs.errors.items()})),
        "reconnects": listener.source_stats.ws_reconnects, "exact": published == truth,
        "transactions": sum(listener.source_stats.txs.values()),
    }
    assert published == truth, f"{case.shape}:{case.name}: published totals differ from the ground truth"
    if faults is not None:
        assert sum(faults.injected.values()) > 0, "the case injected nothing"
    if case.shape.startswith("live"):
        assert lags and statistics.median(lags) < 60, "live events were published, with a bounded lag"
    if "ws_stall" in RESULTS[(case.shape, case.name)]["injected"] or "ws_drop" in RESULTS[(case.shape, case.name)]["injected"]:
        assert RESULTS[(case.shape, case.name)]["reconnects"] > 0, "the listener reconnected its websocket"


def run_live(case: Case, ledger, faults, bootstrap: str, prefix: str, tmp_path, mode: str):
    """Follow the last LIVE_BLOCKS blocks as they arrive; returns (listener, lags, drain seconds)."""
    blocks = case.live_blocks or LIVE_BLOCKS
    start = len(ledger.blocks) - blocks
    confirmed_at: dict[int, float] = {}
    with serve_in_thread(ledger, faults=faults, start_at=start, **case.server) as node:
        extra = {"mode": "blocks", "from_slot": ledger.first_slot} if mode == "blocks" else {}
        listener = Listener(config(node, bootstrap, prefix, tmp_path, **extra, **case.listener))

        def advance(n: int) -> None:
            node.advance(n)
            now = time.time()
            tip = node.server.tip
            for pos in range(max(0, tip - n - CONFIRMED_LAG), min(len(ledger.blocks), tip - CONFIRMED_LAG)):
                confirmed_at.setdefault(ledger.blocks[pos].slot, now)

        async def main() -> float:
            stop = asyncio.Event()
            task = asyncio.create_task(listener.arun(stop))
            while listener.follower is None or (listener.follower.live is None and listener.follower.walker is None):
                await asyncio.sleep(0.05)
                if task.done():
                    await task
            for _ in range(blocks // case.step):
                advance(case.step)
                await asyncio.sleep(LIVE_PAUSE)
            follower = listener.follower
            t = time.monotonic()
            try:
                await asyncio.wait_for(follower.wait_caught_up(require_final=False), CATCH_UP_TIMEOUT)
                drain = time.monotonic() - t
                node.finalize_all()
                await asyncio.wait_for(follower.wait_caught_up(require_final=True), CATCH_UP_TIMEOUT)
            finally:
                stop.set()
            await task
            return drain

        drain = asyncio.run(asyncio.wait_for(main(), 480))
    first_seen: dict[str, float] = {}
    for m in consume(bootstrap, f"{prefix}.flows.v1"):
        v = orjson.loads(m.value)
        if v["commitment"] == "confirmed" and v["slot"] in confirmed_at:
            first_seen[v["event_id"]] = min(first_seen.get(v["event_id"], 1e18), m.timestamp / 1000 - confirmed_at[v["slot"]])
    return listener, sorted(first_seen.values()), drain


def consume(bootstrap: str, topic: str) -> list:
    return read_topic(bootstrap, topic)


def published_totals(bootstrap: str, prefix: str) -> dict[tuple, int]:
    """What a consumer that deduplicates by event_id and applies statuses ends up with."""
    latest = {}
    for m in consume(bootstrap, f"{prefix}.flows.v1"):
        v = orjson.loads(m.value)
        latest[v["event_id"]] = v
    status = {}
    for m in consume(bootstrap, f"{prefix}.status.v1"):
        s = orjson.loads(m.value)
        status[s["signature"]] = s
    sums: dict[tuple, int] = defaultdict(int)
    for v in latest.values():
        st = status.get(v["signature"])
        if st is not None and st["status"] == "retracted" and st["slot"] == v["slot"]:
            continue
        sums[(v["network"], v["day"], v["flow_class"], v["subtype"], v["mint"])] += int(v["amount_raw"])
    return dict(sums)


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def render_table() -> str:
    lines = [f"fault matrix (rate {RATE}; seconds = wall time to caught up; +s = over the fault-free run of the "
             "same shape; live lag = block confirmed -> event on Kafka)",
             "(retries and client errors count JSON-RPC calls: one failed batch of 50 counts 50)",
             f"{'shape':<12}{'fault':<30}{'exact':<7}{'secs':>7}{'+s':>7}{'lag p50':>9}{'lag p99':>9}"
             f"{'drain':>7}{'retries':>9}{'reconn':>8}  injected / client errors"]
    base = {shape: r["seconds"] for (shape, name), r in RESULTS.items() if name.startswith("none")}
    for (shape, name), r in RESULTS.items():
        extra = r["seconds"] - base[shape] if shape in base and not name.startswith("none") else 0.0
        lags = r["lags"]
        lines.append(
            f"{shape:<12}{name:<30}{'yes' if r['exact'] else 'NO':<7}{r['seconds']:>7.1f}{extra:>+7.1f}"
            f"{_pct(lags, 0.5):>9.3f}{_pct(lags, 0.99):>9.3f}{r['drain']:>7.1f}{r['retries']:>9}"
            f"{r['reconnects']:>8}  {r['injected'] or '-'} / {r['errors'] or '-'}")
    return "\n".join(lines)
