"""Odd input never crashes the classifier and never yields records outside the v1 schemas.

Random instruction trees over the watched programs (random discriminators, valid discriminators
with truncated or random args, random account lists) and SPL Token instructions on the
watched mints, with random token balances. Every output must validate; no rule may raise
(a `rule_error` dead letter would mean a rule bug).
"""

from __future__ import annotations

import os

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.decode.model import Instruction, TokenBalance, Transaction
from indexer.decode.spl_token import TOKEN_PROGRAM_ID
from indexer.networks.classify import classify_transaction
from indexer.networks.config import anchor_discriminator
from indexer.networks.helium import KNOWN_INSTRUCTIONS
from tests.indexer.networks.builders import DC, HNT, IOT, MOBILE, RENDER, P, addr, sig
from tests.indexer.networks.test_schemas import DEAD, FLOW, INSTR

LONG = os.environ.get("DEPINFLOW_LONG") == "1"
KEYS = [addr(f"k{i}") for i in range(6)] + [HNT, DC, RENDER, "GqE7wcwRw86xxMz4pNq5cV3BkM64h3bvajQRQbigYqTX"]
PROGRAMS = sorted(P.values()) + [TOKEN_PROGRAM_ID, "wormDTUJ6AWPNvk59vGQbDvGJmqbDTdgWgAqcLBCgUb",
                                 "tuktukUrfhXT6ZT77QTU8RQtvgL967uRuVagWF57zVA"]
KNOWN = [(P[prog], anchor_discriminator(name)) for prog, names in KNOWN_INSTRUCTIONS.items()
         if prog in P for name in names]


@st.composite
def instruction_data(draw, program_id: str) -> bytes:
    if program_id == TOKEN_PROGRAM_ID:
        tag = draw(st.sampled_from([3, 7, 8, 12, 14, 15, 9, 200]))
        return bytes([tag]) + draw(st.binary(max_size=12))
    known = [d for pid, d in KNOWN if pid == program_id]
    head = draw(st.sampled_from(known)) if known and draw(st.booleans()) else draw(st.binary(min_size=0, max_size=8))
    return head + draw(st.binary(max_size=40))


@st.composite
def node(draw, depth: int = 0) -> dict:
    program_id = draw(st.sampled_from(PROGRAMS))
    children = draw(st.lists(node(depth + 1), max_size=3)) if depth < 3 else []
    return {"program_id": program_id, "data": draw(instruction_data(program_id)),
            "accounts": draw(st.lists(st.sampled_from(KEYS), max_size=18)), "children": children}


def to_ix(n: dict, path: str, height: int) -> Instruction:
    ix = Instruction(path, n["program_id"], n["accounts"], n["data"], height)
    ix.children = [to_ix(c, f"{path}.{i + 1}", height + 1) for i, c in enumerate(n["children"])]
    return ix


@st.composite
def transactions(draw) -> Transaction:
    tops = draw(st.lists(node(), min_size=1, max_size=4))
    balances = [TokenBalance(i, k, draw(st.sampled_from([HNT, DC, IOT, MOBILE, RENDER])),
                             draw(st.sampled_from(KEYS)), draw(st.integers(0, 2**64 - 1)), 8, TOKEN_PROGRAM_ID)
                for i, k in enumerate(draw(st.lists(st.sampled_from(KEYS[:6] + KEYS[-1:]), max_size=5, unique=True)))]
    logs = draw(st.lists(st.sampled_from([
        "Program log: HNT Price is 123 * 10^-2, issuing 5 data credits", f"Program {P['data_credits']} invoke [1]",
        f"Program {P['data_credits']} success", "Log truncated", "Program log: x"]), max_size=6))
    keys = list(dict.fromkeys([*KEYS, *PROGRAMS]))
    return Transaction(
        signature=sig(str(draw(st.integers(0, 10**6)))), slot=draw(st.integers(0, 2**40)),
        block_time=draw(st.none() | st.integers(0, 2**34)), fee=5000,
        err=draw(st.none() | st.just({"InstructionError": [0, "Custom"]})), version=0, account_keys=keys,
        num_signers=1, writable=[True] * len(keys), instructions=[to_ix(n, str(i), 1) for i, n in enumerate(tops)],
        log_messages=logs, pre_token_balances=balances, post_token_balances=balances)


@settings(max_examples=2000 if LONG else 60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transactions())
def test_random_transactions_classify_to_valid_records(tx):
    out = classify_transaction(tx)
    if tx.err is not None:
        assert out.flows == []
    for f in out.flows:
        FLOW.validate(orjson.loads(f.to_json()))
    for r in out.instructions:
        INSTR.validate(orjson.loads(orjson.dumps(r)))
    for d in out.dead_letters:
        DEAD.validate(orjson.loads(orjson.dumps(d)))
        assert d["reason"] != "rule_error", d
    ids = [f.event_id for f in out.flows]
    assert len(ids) == len(set(ids)), ids
