"""The hand-written wire-message reader agrees with solders on valid and damaged transaction bytes.

WHY: txparse walks the bincode `VersionedTransaction` itself (faster than reading solders'
objects back into Python). solders (the Rust SDK's own deserializer) is the reference: for any
bytes, both must agree - same signature, version, header, keys and instructions - or both must
reject them, ours with a typed DecodeError. Damaged inputs are the real seeds (mainnet fixture
re-encodings, legacy and v0, plus every simulator transaction) mutated by the fuzz suite's
byte mutator, so cuts, bit flips and splices land inside every field.
"""

from __future__ import annotations

import base64
import copy
import json
from functools import cache

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from solders.transaction import VersionedTransaction

from indexer.decode.errors import DecodeError
from indexer.decode.txforms import to_encoding
from indexer.decode.txparse import clear_caches, parse_transaction
from tests.fuzz.corpus import HypChooser, mutate_bytes, sim_results
from tests.fuzz.profiles import budget
from tests.refdata import reference_path

FIXTURES = ["hsd_claim_rewards", "lazy_distributor_distribute"]
SIG = "1111111111111111111111111111111111111111111111111111111111111111"


def _legacy(doc: dict) -> dict:
    """The fixture as a legacy message (every key static, in header order)."""
    doc = copy.deepcopy(doc)
    msg = doc["transaction"]["message"]
    old = [k["pubkey"] for k in msg["accountKeys"]]
    keys = sorted((dict(k, source="transaction") for k in msg["accountKeys"]),
                  key=lambda k: (0 if k["signer"] else 2) + (0 if k["writable"] else 1))
    msg["accountKeys"] = keys
    del msg["addressTableLookups"]
    order = {k["pubkey"]: i for i, k in enumerate(keys)}
    for b in doc["meta"]["preTokenBalances"] + doc["meta"]["postTokenBalances"]:
        b["accountIndex"] = order[old[b["accountIndex"]]]
    return doc


@cache
def seeds() -> tuple[dict, ...]:
    """base64 getTransaction results: fixtures (v0 + legacy) and the simulator's transactions."""
    out = []
    for name in FIXTURES:
        doc = json.loads(reference_path(f"helium/fixtures/{name}.json").read_text())
        out += [to_encoding(doc, "base64"), to_encoding(_legacy(doc), "base64")]
    out += [orjson.loads(r) for r in sim_results("base64")]
    return tuple(out)


def reference(raw: bytes, meta: dict) -> tuple:
    """What solders reads from the bytes, in the model's terms (raises on anything it rejects)."""
    vtx = VersionedTransaction.from_bytes(raw)
    msg = vtx.message
    la = meta.get("loadedAddresses") or {}
    keys = [str(k) for k in msg.account_keys] + list(la.get("writable") or []) + list(la.get("readonly") or [])
    h = msg.header
    version = "legacy" if type(msg).__name__ == "Message" else 0
    ixs = [(keys[ci.program_id_index], [keys[a] for a in bytes(ci.accounts)], bytes(ci.data))
           for ci in msg.instructions]
    # what the meta refers to by index must exist too (inner instructions, token balances)
    inner = [(ixs[g["index"]], [(keys[ix["programIdIndex"]], [keys[a] for a in ix["accounts"]])
                                for ix in g["instructions"]]) for g in meta.get("innerInstructions") or ()]
    balances = [keys[b["accountIndex"]] for b in (meta.get("preTokenBalances") or []) +
                (meta.get("postTokenBalances") or [])]
    return (str(vtx.signatures[0]), version, h.num_required_signatures, h.num_readonly_signed_accounts,
            h.num_readonly_unsigned_accounts, keys, ixs, inner, balances)


def ours(raw: bytes, result: dict) -> tuple:
    doc = dict(result, transaction=[base64.b64encode(raw).decode(), "base64"])
    tx = parse_transaction(doc)
    flags = tx.writable[:len(tx.account_keys) - sum(len(v) for v in (result["meta"].get("loadedAddresses")
                                                                       or {}).values())]
    inner = []
    for g in result["meta"].get("innerInstructions") or ():
        top = tx.instructions[g["index"]]
        inner.append(((top.program_id, top.accounts, top.data),
                      [(ix.program_id, ix.accounts) for ix in list(tx.walk()) if ix.path.startswith(f"{top.path}.")]))
    balances = [b.account for b in tx.pre_token_balances + tx.post_token_balances]
    return tx, flags, (tx.signature, tx.version, tx.num_signers, tx.account_keys,
                       [(ix.program_id, ix.accounts, ix.data) for ix in tx.instructions], inner, balances)


def _wire(result: dict) -> bytes:
    return base64.b64decode(result["transaction"][0])


def _writable(nsig: int, ro_s: int, ro_u: int, n: int) -> list[bool]:
    return [i < nsig - ro_s or nsig <= i < n - ro_u for i in range(n)]


def check(raw: bytes, result: dict) -> str:
    """Both readers agree on `raw`; returns "ok" or "rejected"."""
    try:
        ref = reference(raw, result["meta"])
    except Exception:  # noqa: BLE001 - solders raises its own error types, IndexError on a bad index
        ref = None
    try:
        tx, flags, got = ours(raw, result)
    except DecodeError:
        # Rejections solders does not make: header counts that do not fit the keys (the runtime's
        # sanitize rule, checked by the parser since before the wire reader existed).
        if ref is not None:
            _sig, _v, nsig, ro_s, ro_u, keys, *_rest = ref
            n_static = len(keys) - sum(len(v) for v in (result["meta"].get("loadedAddresses") or {}).values())
            assert not (0 <= ro_s <= nsig <= n_static and 0 <= ro_u <= n_static - nsig), raw.hex()
        return "rejected"
    assert ref is not None, f"accepted bytes solders rejects: {raw.hex()}"
    sig, version, nsig, ro_s, ro_u, keys, ixs, inner, balances = ref
    assert got == (sig, version, nsig, keys, ixs, inner, balances)
    assert flags == _writable(nsig, ro_s, ro_u, len(flags))
    return "ok"


@pytest.mark.parametrize("cold", [False, True], ids=["warm", "cold"])
def test_valid_bytes_read_like_solders(cold: bool) -> None:
    for result in seeds():
        if cold:
            clear_caches()
        assert check(_wire(result), result) == "ok"


def test_truncation_at_every_byte_is_a_typed_rejection() -> None:
    result = seeds()[0]
    raw = _wire(result)
    outcomes = {check(raw[:cut], result) for cut in range(len(raw))}
    assert outcomes == {"rejected"}


def test_trailing_bytes_are_ignored_like_bincode() -> None:
    result = seeds()[0]
    assert check(_wire(result) + b"\x00\xff", result) == "ok"


@pytest.mark.parametrize("patch,reason", [
    (lambda raw: b"\x81\x00" + raw[1:], "non-canonical compact-u16"),       # 1 signature as 2 bytes
    (lambda raw: raw[:65] + b"\x81" + raw[66:], "unsupported message version 1"),
    (lambda raw: raw[:65] + b"\xff" + raw[66:], "unsupported message version 127"),
])
def test_malformed_prefixes_name_the_problem(patch, reason: str) -> None:
    result = seeds()[0]
    raw = patch(_wire(result))
    with pytest.raises(DecodeError) as exc:
        parse_transaction(dict(result, transaction=[base64.b64encode(raw).decode(), "base64"]))
    assert exc.value.reason == "malformed_transaction" and reason in exc.value.detail
    with pytest.raises(Exception):  # noqa: B017 - solders rejects them too
        VersionedTransaction.from_bytes(raw)


@budget(800)
@given(data=st.data())
def test_damaged_bytes_agree_with_solders(data) -> None:
    ch = HypChooser(data)
    all_seeds = seeds()
    result = all_seeds[ch.int(0, len(all_seeds) - 1)]
    check(mutate_bytes(_wire(result), ch), result)
