"""Decoder throughput on one core: instructions/s and parsed transactions/s.

Run:  .venv/bin/python bench/decode.py [--seconds 2] [--trials 5] [--seed 7]

Prints the figures (median and best of --trials runs, CPU time), the machine load at start and
end, and the exact command line. Workloads:
* ix/s  - a mix of real Helium instructions (both reference fixtures' Helium instructions plus
          the value instructions of programs.md encoded by the project encoder with realistic
          args and account counts), decoded through ProgramRegistry.decode with the slot given:
          discriminator lookup, args decoded to canonical values, accounts mapped to IDL names.
* tx/s  - getTransaction results of the mainnet fixture (v0, LUT, 4-level CPI tree) in base64
          (rebuilt with solders from the project encoder) and in jsonParsed (as served), through
          parse_transaction (account keys, flags, instruction tree, token balances, logs); also
          from raw response bytes through parse_response (orjson included), and with the base58
          memo caches cleared before every transaction (the cost of a never-seen transaction),
          and with every instruction's account list read after parsing (lists are resolved on
          first read, so the plain figure leaves out lists nobody reads);
          and one simulated day of the devchain (every transaction different) in base64, with
          caches warm from a previous pass and cleared before each pass.
Every rate is process CPU time, also printed as microseconds of CPU per item (us/ix, us/tx).
Per-stage figures of the listener's work (parse, decode, classify, serialize) on the transactions
the backfill fetches: bench/classify.py --stages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import orjson  # noqa: E402
from solders.pubkey import Pubkey  # noqa: E402

from indexer.decode.registry import default_registry  # noqa: E402
from indexer.decode.txforms import to_encoding  # noqa: E402
from indexer.decode.txparse import clear_caches, parse_response, parse_transaction  # noqa: E402

REF = Path(os.environ.get("DEPINFLOW_REFERENCE", ROOT.parent / "shared" / "reference"))
FIXTURES = [REF / "helium" / "fixtures" / f for f in ("hsd_claim_rewards.json", "lazy_distributor_distribute.json")]

SLOT = 409_977_754
H = bytes(range(32))
# (program id, instruction, args) for the value instructions of programs.md
SYNTHETIC = [
    ("credMBJhYFzfn7NxBMdU4aUqFggAjgztaCcv2Fo6fPT", "mint_data_credits_v0",
     {"args": {"hnt_amount": 123_456_789, "dc_amount": None}}),
    ("credMBJhYFzfn7NxBMdU4aUqFggAjgztaCcv2Fo6fPT", "burn_delegated_data_credits_v0", {"args": {"amount": 2_500_000}}),
    ("credMBJhYFzfn7NxBMdU4aUqFggAjgztaCcv2Fo6fPT", "burn_without_tracking_v0", {"args": {"amount": 4_000_000}}),
    ("credMBJhYFzfn7NxBMdU4aUqFggAjgztaCcv2Fo6fPT", "delegate_data_credits_v0",
     {"args": {"amount": 10_000_000, "router_key": "11WxwmGfMMGKaJbLyyFT9WpDwnWRQDEHgkpDbkzXaFx8rGNvzDw"}}),
    ("hdaoVTCqhfHHo75XdAMxBKdUqvq1i5bF23sisBqVgGR", "issue_rewards_v0", {"args": {"epoch": 20542}}),
    ("hdaoVTCqhfHHo75XdAMxBKdUqvq1i5bF23sisBqVgGR", "calculate_utility_score_v0", {"args": {"epoch": 20542}}),
    ("1azyuavdMyvsivtNxPoz6SucD18eDHeXzFCUPq5XU7w", "distribute_compression_rewards_v0",
     {"args": {"data_hash": H, "creator_hash": H, "root": H, "index": 77}}),
    ("hemjuPXBpNvggtaUnN1MwT3wrdhttKEfosTcc2P9Pg8", "onboard_iot_hotspot_v0",
     {"args": {"data_hash": H, "creator_hash": H, "root": H, "index": 5, "location": 631_210_968_849_681_407,
               "elevation": 10, "gain": 12}}),
    ("treaf4wWBBty3fHdyBpo35Mz84M8k3heKXmjmi9vFt5", "redeem_v0",
     {"args": {"amount": 1_000_000, "expected_output_amount": 17}}),
    ("noEmmgLmQdk6DLiPV8CSwQv3qQDyGEhz9m5A4zhtByv", "no_emit_v0", {}),
    ("circAbx64bbsscPbQzZAUvuXpHqrCe6fLMzc2uKXz9g", "mint_v0", {"args": {"amount": 5_000_000_000}}),
    ("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "transferChecked", {"amount": 42, "decimals": 8}),
    ("TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA", "burn", {"amount": 787}),
]
TOKEN_ACCOUNTS = {"transferChecked": 4, "burn": 3}


def instruction_mix(reg) -> list[tuple[str, bytes, list[str], int]]:
    items = []
    for path in FIXTURES:
        tx = parse_transaction(json.loads(path.read_text()))
        for ix in tx.walk():
            if ix.data is not None and reg.knows(ix.program_id):
                items.append((ix.program_id, ix.data, ix.accounts, tx.slot))
    for i, (pid, name, args) in enumerate(SYNTHETIC):
        data = reg.encode(pid, name, args)
        n = TOKEN_ACCOUNTS.get(name) or len(reg.account_names(pid, name))
        accounts = [str(Pubkey.from_bytes(bytes([i + 1, j + 1]) + bytes(30))) for j in range(n)]
        items.append((pid, data, accounts, SLOT))
    return items


def _rates(run_batch, batch_size: int, seconds: float, trials: int) -> list[float]:
    """Rates of `trials` runs of ~seconds each, timed in process CPU time (the machine is shared:
    wall time would also count other processes' work; CPU time still rises when a sibling
    hyperthread is busy, hence several runs and both the median and the best)."""
    out = []
    for _ in range(trials):
        n = 0
        t0 = time.process_time()
        while True:
            run_batch()
            n += batch_size
            dt = time.process_time() - t0
            if dt >= seconds:
                break
        out.append(n / dt)
    return out


def _summary(rates: list[float]) -> tuple[float, float]:
    return statistics.median(rates), max(rates)


def bench_ix(seconds: float, trials: int) -> tuple[list[float], int]:
    reg = default_registry()
    items = instruction_mix(reg) * 20
    dec = reg.decode
    for pid, data, acc, slot in items:  # warm + sanity
        dec(pid, data, acc, slot)

    def batch() -> None:
        for pid, data, acc, slot in items:
            dec(pid, data, acc, slot)

    return _rates(batch, len(items), seconds, trials), len(items) // 20


def _rate(fn, arg, seconds: float, trials: int) -> list[float]:
    fn(arg)

    def batch() -> None:
        for _ in range(50):
            fn(arg)

    return _rates(batch, 50, seconds, trials)


def bench_tx(seconds: float, trials: int) -> dict[str, list[float]]:
    """The mainnet fixture (the same transaction again and again: memo caches warm)."""
    parsed = json.loads(FIXTURES[0].read_text())
    b64 = to_encoding(parsed, "base64")
    def cold(result: dict) -> None:
        clear_caches()
        parse_transaction(result)

    def with_accounts(result: dict) -> None:
        for ix in parse_transaction(result).walk():
            ix.accounts  # noqa: B018 - resolved lazily: this is the cost when every list is used

    out = {
        "base64 result dict": _rate(parse_transaction, b64, seconds, trials),
        "base64 result dict, then every instruction's accounts read": _rate(with_accounts, b64, seconds, trials),
        "base64 result dict, base58 memo caches cleared before each tx": _rate(cold, b64, seconds, trials),
        "jsonParsed result dict": _rate(parse_transaction, parsed, seconds, trials),
    }
    b64_bytes = orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": b64})
    parsed_bytes = orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": parsed})
    out["base64 response bytes (orjson.loads incl.)"] = _rate(parse_response, b64_bytes, seconds, trials)
    out["jsonParsed response bytes (orjson.loads incl.)"] = _rate(parse_response, parsed_bytes, seconds, trials)
    return out


def bench_sim(seconds: float, trials: int, seed: int) -> tuple[dict[str, list[float]], int]:
    """One simulated day (Helium, Render, noise; v0 and legacy; failures) as served by the devchain
    in base64: every transaction is different, so only keys that really recur (programs, mints,
    DAO accounts, the simulator's actor pools) hit the memo caches."""
    from indexer.devchain.ledger import SimConfig, generate_ledger
    from indexer.devchain.render import get_transaction_result

    led = generate_ledger(SimConfig(seed=seed))
    results = []
    for block in led.blocks:
        for tx in block.transactions:
            r = get_transaction_result(tx, "base64", True)
            r["slot"], r["blockTime"] = block.slot, block.block_time
            results.append(r)
    for r in results:  # warm + sanity
        parse_transaction(r)

    def warm() -> None:
        for r in results:
            parse_transaction(r)

    def first_pass() -> None:
        clear_caches()
        for r in results:
            parse_transaction(r)

    return {"base64, caches warm from a previous pass": _rates(warm, len(results), seconds, trials),
            "base64, caches cleared before each pass": _rates(first_pass, len(results), seconds, trials),
            }, len(results)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores"


def _fmt(rates: list[float], unit: str) -> str:
    med, best = _summary(rates)
    item = unit.split("/")[0]
    return (f"median {med:,.0f} {unit} = {1e6 / med:.1f} us CPU/{item}, best {best:,.0f} {unit} "
            f"(of {len(rates)} runs)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="time per run")
    ap.add_argument("--trials", type=int, default=5, help="runs per figure (median and best are printed)")
    ap.add_argument("--seed", type=int, default=7, help="simulator seed for the simulated-day workload")
    args = ap.parse_args()
    print(f"command: {' '.join([Path(sys.executable).name] + sys.argv)}  (cwd {ROOT})")
    print(f"python {platform.python_version()} on {platform.machine()}, one core; {_load()} at start")
    rates, kinds = bench_ix(args.seconds, args.trials)
    print(f"instruction decode (args + named accounts), mix of {kinds} Helium/SPL instructions: {_fmt(rates, 'ix/s')}")
    for name, r in bench_tx(args.seconds, args.trials).items():
        print(f"parse_transaction, mainnet fixture, {name}: {_fmt(r, 'tx/s')}")
    sim, n = bench_sim(args.seconds, args.trials, args.seed)
    for name, r in sim.items():
        print(f"parse_transaction, simulated day (seed {args.seed}, {n} transactions), {name}: {_fmt(r, 'tx/s')}")
    print(f"{_load()} at end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
