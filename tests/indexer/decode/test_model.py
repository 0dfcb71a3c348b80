"""Instruction.accounts resolved on first read behaves exactly like the plain list field."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import pickle

import pytest
from solders.hash import Hash
from solders.instruction import CompiledInstruction
from solders.message import Message
from solders.pubkey import Pubkey
from solders.signature import Signature
from solders.transaction import VersionedTransaction

from indexer.decode.errors import DecodeError
from indexer.decode.model import Instruction
from indexer.decode.txforms import to_encoding
from indexer.decode.txparse import parse_transaction
from tests.refdata import reference_path


def _b64() -> dict:
    doc = json.loads(reference_path("helium/fixtures/hsd_claim_rewards.json").read_text())
    return to_encoding(doc, "base64")


def _eager(tx) -> list[Instruction]:
    """The same tree built through the dataclass constructor (accounts stored as given)."""
    def copy_ix(ix: Instruction) -> Instruction:
        return Instruction(ix.path, ix.program_id, list(ix.accounts), ix.data, ix.stack_height, ix.parsed,
                           ix.program_name, [copy_ix(c) for c in ix.children])
    return [copy_ix(ix) for ix in tx.instructions]


def test_lazy_accounts_equal_compare_repr_and_pickle_like_plain_ones() -> None:
    lazy = parse_transaction(_b64()).instructions
    fresh = parse_transaction(_b64()).instructions   # nothing read yet
    eager = _eager(parse_transaction(_b64()))
    assert fresh == eager and repr(fresh) == repr(eager)
    assert [c.accounts for c in lazy[2].children] == [c.accounts for c in eager[2].children]
    for ix in (parse_transaction(_b64()).instructions[2], lazy[3]):
        assert pickle.loads(pickle.dumps(ix)) == ix
        assert copy.deepcopy(ix) == ix and copy.copy(ix).accounts == ix.accounts
        assert dataclasses.replace(ix, path="x").accounts == ix.accounts
    assert [f.name for f in dataclasses.fields(Instruction)] == [
        "path", "program_id", "accounts", "data", "stack_height", "parsed", "program_name", "children"]


def test_accounts_read_once_then_the_same_list_and_writable() -> None:
    ix = parse_transaction(_b64()).instructions[2]
    first = ix.accounts
    assert first is ix.accounts and len(first) == 26 and all(isinstance(k, str) for k in first)
    ix.accounts = ["x"]
    assert ix.accounts == ["x"]
    built = Instruction("0", "p", ["a", "b"], b"", 1)
    assert built.accounts == ["a", "b"] and built == Instruction("0", "p", ["a", "b"], b"", 1)


@pytest.mark.parametrize("accounts", [[0, 99], [0, -1], [0, "1"], [1.5], 7, None])
def test_a_bad_inner_account_index_is_rejected_at_parse_time(accounts) -> None:
    """Lazy resolution must not move a malformed index to the first read: it is checked when parsing."""
    doc = _b64()
    doc["meta"]["innerInstructions"][0]["instructions"][0]["accounts"] = accounts
    with pytest.raises(DecodeError) as exc:
        parse_transaction(doc)
    assert exc.value.reason == "malformed_transaction"


def _wire_tx(account_indexes: bytes) -> dict:
    """A one-instruction legacy transaction (2 static keys) whose instruction names `account_indexes`."""
    keys = [Pubkey.from_bytes(bytes([i + 1]) * 32) for i in range(2)]
    msg = Message.new_with_compiled_instructions(1, 0, 1, keys, Hash.default(),
                                                 [CompiledInstruction(1, b"\x01", account_indexes)])
    vtx = VersionedTransaction.populate(msg, [Signature.default()])
    return {"slot": 5, "blockTime": None, "meta": {"err": None, "fee": 5000},
            "transaction": [base64.b64encode(bytes(vtx)).decode(), "base64"]}


def test_a_top_level_account_index_beyond_the_keys_is_rejected_at_parse_time() -> None:
    tx = parse_transaction(_wire_tx(bytes([0, 1])))
    assert tx.instructions[0].accounts == tx.account_keys
    with pytest.raises(DecodeError) as exc:
        parse_transaction(_wire_tx(bytes([0, 2])))
    assert exc.value.reason == "malformed_transaction"
