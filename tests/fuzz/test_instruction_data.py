"""Bad instruction data for every program of the default registry, inside real transactions.

Each case takes a simulator transaction (json encoding, as the RPC serves it), points one of its
Helium instructions - top-level or a CPI - at a program of the registry (all Anchor programs of
schemas/programs plus SPL Token and Token-2022) and replaces its data with: a valid discriminator of
that program followed by random bytes, a mutation of real instruction bytes the simulator produced
for it, or plain random bytes. The transaction then goes through both halves of the listener:
- the classifier: every Helium instruction ends as an instruction record or a decode dead letter with
  a typed reason and its exact raw bytes (nothing dropped, nothing crashes, no rule error);
- the processor: every message validates against its v1 schema and is accepted by the sink.
"""

from __future__ import annotations

from collections import defaultdict
from functools import cache

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexer.decode.base58 import b58decode, b58encode
from indexer.decode.registry import default_registry
from indexer.decode.spl_token import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from indexer.decode.txparse import parse_transaction
from indexer.networks.classify import classify_transaction
from tests.fuzz.corpus import (
    HypChooser,
    check_classified,
    check_messages,
    helium_program_ids,
    listener_messages,
    mutate_bytes,
    sim_results,
)
from tests.fuzz.profiles import budget

REGISTRY = default_registry()
ANCHOR = sorted(REGISTRY._anchor)
PROGRAMS = ANCHOR + [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID]


def _discriminators(program_id: str) -> list[bytes]:
    """Every discriminator of every IDL layer (all eras) of an Anchor program; token tags for SPL."""
    if program_id not in REGISTRY._anchor:
        return [bytes([t]) for t in (3, 7, 8, 9, 12, 14, 15, 26)]
    discs = {d for _f, _u, _s, comp in REGISTRY._anchor[program_id].layers for d in comp.by_disc}
    return sorted(discs)


@cache
def _sites() -> tuple[list[dict], dict[str, list[bytes]]]:
    """Seed transactions with the locations of their Helium/token instructions, and real data per program."""
    helium = helium_program_ids() | {TOKEN_PROGRAM_ID}
    seeds, real = [], defaultdict(list)
    for raw in sim_results("json"):
        doc = orjson.loads(raw)
        msg, meta = doc["transaction"]["message"], doc["meta"]
        loaded = meta.get("loadedAddresses") or {}
        keys = msg["accountKeys"] + loaded.get("writable", []) + loaded.get("readonly", [])
        sites = [("top", i) for i, ix in enumerate(msg["instructions"]) if keys[ix["programIdIndex"]] in helium]
        for g, group in enumerate(meta.get("innerInstructions") or []):
            sites += [("inner", g, j) for j, ix in enumerate(group["instructions"])
                      if keys[ix["programIdIndex"]] in helium]
        for ix in msg["instructions"] + [i for g in meta.get("innerInstructions") or [] for i in g["instructions"]]:
            real[keys[ix["programIdIndex"]]].append(b58decode(ix["data"]))
        if sites:
            tx = parse_transaction(doc)
            seeds.append({"doc": doc, "raw": raw, "sites": sites, "sig": tx.signature, "slot": tx.slot,
                          "block_time": tx.block_time})
    return seeds, dict(real)


def _instruction_at(doc: dict, site: tuple) -> dict:
    if site[0] == "top":
        return doc["transaction"]["message"]["instructions"][site[1]]
    return doc["meta"]["innerInstructions"][site[1]]["instructions"][site[2]]


def _retarget(doc: dict, index: int, program_id: str) -> None:
    """Make account key `index` (static or loaded) the program id."""
    static = doc["transaction"]["message"]["accountKeys"]
    if index < len(static):
        static[index] = program_id
        return
    loaded = doc["meta"]["loadedAddresses"]
    index -= len(static)
    part = "writable" if index < len(loaded["writable"]) else "readonly"
    loaded[part][index - (len(loaded["writable"]) if part == "readonly" else 0)] = program_id


def _fuzzed_data(ch: HypChooser, program_id: str, real: dict[str, list[bytes]]) -> bytes:
    kind = ch.pick(("disc+tail", "disc+tail", "mutated-real", "random", "disc-only"))
    if kind == "mutated-real" and real.get(program_id):
        return mutate_bytes(ch.pick(real[program_id]), ch)
    if kind in ("disc+tail", "disc-only", "mutated-real"):
        disc = ch.pick(_discriminators(program_id))
        return disc + (b"" if kind == "disc-only" else ch.blob(0, 200))
    return ch.blob(0, 64)


@pytest.mark.parametrize("program_id", PROGRAMS)
@budget(160)
@given(data=st.data())
def test_fuzzed_instruction_data_is_recorded_or_dead_lettered(program_id: str, data):
    ch = HypChooser(data)
    seeds, real = _sites()
    seed = seeds[ch.int(0, len(seeds) - 1)]
    doc = orjson.loads(seed["raw"])
    site = ch.pick(seed["sites"])
    ix = _instruction_at(doc, site)
    _retarget(doc, ix["programIdIndex"], program_id)
    payload = _fuzzed_data(ch, program_id, real)
    ix["data"] = b58encode(payload)
    if ch.int(0, 3) == 0:                                   # sometimes also drop or add accounts
        ix["accounts"] = ix["accounts"][: ch.int(0, len(ix["accounts"]))]

    tx = parse_transaction(doc)                             # the JSON is intact: it must parse
    assert any(i.data == payload and i.program_id == program_id for i in tx.walk())
    check_classified(tx, classify_transaction(tx, commitment=ch.pick(("confirmed", "finalized"))))
    counts = check_messages(listener_messages(doc, seed["sig"], seed["slot"], seed["block_time"]))
    if program_id in helium_program_ids():
        assert counts, "a transaction with a watched instruction yields at least one message"


def test_every_registry_program_is_fuzzed_and_every_seed_site_decodes():
    """The corpus is not vacuous: all registry programs are parametrized, and unmodified seed
    instructions decode without any dead letter (so the dead letters above come from the fuzzing)."""
    assert set(PROGRAMS) >= {p for p in REGISTRY.program_ids() if p in REGISTRY._anchor}
    seeds, _ = _sites()
    assert len(seeds) > 50
    for seed in seeds:
        tx = parse_transaction(seed["doc"])
        out = classify_transaction(tx)
        check_classified(tx, out)
        assert [d for d in out.dead_letters if d["stage"] == "decode"] == [], seed["sig"]
