"""Hypothesis fuzzing: arbitrary or mutated bytes into every decoder give a DecodeError with a
known reason (or a valid decode), never another exception."""

from __future__ import annotations

import json
import os
from functools import cache, lru_cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.decode.anchor_idl import CompiledIdl
from indexer.decode.base58 import b58decode
from indexer.decode.errors import REASONS, DecodeError
from indexer.decode.registry import default_registry
from indexer.decode.spl_token import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID, decode_token_instruction
from indexer.decode.txparse import parse_response, parse_transaction
from tests.refdata import reference_path

LONG = os.environ.get("DEPINFLOW_LONG") == "1"
N = 2000 if LONG else 60
FUZZ = settings(max_examples=N, deadline=None, suppress_health_check=list(HealthCheck))
ACCOUNTS = ["11111111111111111111111111111111"] * 40


def _registry_instructions() -> list[tuple[str, bytes, int | None]]:
    """(program id, discriminator, a slot inside the layer) for every instruction of every layer."""
    reg = default_registry()
    out = []
    for pid, prog in reg._anchor.items():
        for from_slot, _until, _seq, comp in prog.layers:
            for disc in comp.by_disc:
                out.append((pid, disc, from_slot if from_slot else None))
    return out


REG_IX = _registry_instructions()
PROGRAMS = sorted({pid for pid, _, _ in REG_IX})


def _check(fn, *args) -> None:
    try:
        fn(*args)
    except DecodeError as e:
        assert e.reason in REASONS, e.reason


@pytest.mark.parametrize("program_id", PROGRAMS)
@FUZZ
@given(data=st.data())
def test_registry_decoders_only_raise_decode_error(program_id: str, data) -> None:
    reg = default_registry()
    choices = [(d, s) for p, d, s in REG_IX if p == program_id]
    disc, slot = data.draw(st.sampled_from(choices))
    tail = data.draw(st.binary(max_size=300))
    n_acc = data.draw(st.integers(0, 40))
    _check(reg.decode, program_id, disc + tail, ACCOUNTS[:n_acc], slot)
    _check(reg.decode, program_id, data.draw(st.binary(max_size=40)), ACCOUNTS[:n_acc], slot)


@FUZZ
@given(data=st.data())
def test_mutated_valid_encodings(data) -> None:
    """Start from a valid encoding (the all-types instruction) and flip, cut or extend it."""
    from tests.indexer.decode.borsh_ref import RefIdl
    from tests.indexer.decode.test_anchor_types import ALL_TYPES_IDL

    ref = RefIdl(ALL_TYPES_IDL)
    ix = ALL_TYPES_IDL["instructions"][0]
    raw = bytearray(ref.encode_ix(ix, data.draw(ref.args_strategy(ix))))
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "extend", "set"]))
        pos = data.draw(st.integers(8, max(8, len(raw) - 1)))
        if op == "flip" and pos < len(raw):
            raw[pos] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "cut":
            del raw[pos:]
        elif op == "extend":
            raw += data.draw(st.binary(min_size=1, max_size=8))
        elif pos < len(raw):
            raw[pos] = data.draw(st.sampled_from([0, 1, 2, 0x7F, 0x80, 0xFF]))
    _check(_all_types().decode, bytes(raw))


@lru_cache(maxsize=1)
def _all_types() -> CompiledIdl:
    from tests.indexer.decode.test_anchor_types import ALL_TYPES_IDL

    return CompiledIdl(ALL_TYPES_IDL)


@cache
def _compiled_file(rel: str) -> CompiledIdl:
    return CompiledIdl(json.loads(reference_path(f"helium/idls/{rel}").read_text()))


def _idl_files() -> list[str]:
    root = reference_path("helium/idls")
    return sorted(str(p.relative_to(root)) for d in ("anchor030", "helium-wallet-rs") for p in (root / d).glob("*.json"))


@pytest.mark.parametrize("rel", _idl_files())
@FUZZ
@given(data=st.data())
def test_idl_decoders_only_raise_decode_error(rel: str, data) -> None:
    c = _compiled_file(rel)
    disc = data.draw(st.sampled_from(sorted(c.by_disc)))
    _check(c.decode, disc + data.draw(st.binary(max_size=300)))


@FUZZ
@given(raw=st.binary(max_size=40), program=st.sampled_from([TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID]),
       n=st.integers(0, 12))
def test_token_decoder_only_raises_decode_error(raw: bytes, program: str, n: int) -> None:
    _check(decode_token_instruction, program, raw, ACCOUNTS[:n])


@FUZZ
@given(text=st.text(max_size=60))
def test_base58_only_raises_decode_error(text: str) -> None:
    _check(b58decode, text)


@FUZZ
@given(raw=st.binary(max_size=400))
def test_transaction_parser_only_raises_decode_error(raw: bytes) -> None:
    import base64

    result = {"slot": 1, "blockTime": 2, "transaction": [base64.b64encode(raw).decode(), "base64"],
              "meta": {"err": None, "fee": 5000}}
    _check(parse_transaction, result)
    _check(parse_response, raw)


@FUZZ
@given(data=st.data())
def test_mangled_json_results_only_raise_decode_error(data) -> None:
    """Delete or retype random fields of a real jsonParsed result."""
    doc = json.loads(reference_path("helium/fixtures/hsd_claim_rewards.json").read_text())
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + (k,))
                walk(v, path + (k,))
        elif isinstance(node, list):
            for i, v in enumerate(node[:3]):
                paths.append(path + (i,))
                walk(v, path + (i,))

    walk(doc, ())
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        node = doc
        try:
            for k in path[:-1]:
                node = node[k]
            if isinstance(node, dict) and data.draw(st.booleans()):
                node.pop(path[-1], None)
            else:
                node[path[-1]] = data.draw(st.sampled_from([None, 7, "x", [], {}, -1, "zz0OIl"]))
        except (KeyError, IndexError, TypeError):
            continue
    _check(parse_transaction, doc)
