"""Transaction model from getTransaction/getBlock results: encodings, versions, tree, balances."""

from __future__ import annotations

import copy
import json
import struct

import orjson
import pytest

from indexer.decode.errors import DecodeError
from indexer.decode.registry import default_registry
from indexer.decode.spl_token import PROGRAM_NAMES as TOKEN_PROGRAMS
from indexer.decode.spl_token import decode_parsed_token
from indexer.decode.txforms import to_encoding
from indexer.decode.txparse import parse_block, parse_response, parse_transaction
from tests.refdata import reference_path

FIXTURES = ["hsd_claim_rewards", "lazy_distributor_distribute"]


def _fixture(name: str) -> dict:
    return json.loads(reference_path(f"helium/fixtures/{name}.json").read_text())


def _legacy(doc: dict) -> dict:
    """The same transaction as a legacy message: every key static, in message-header order."""
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


def _shape(tx) -> list[tuple]:
    return [(ix.path, ix.program_id, ix.stack_height, len(ix.children)) for ix in tx.walk()]


def _decoded(tx) -> list:
    reg = default_registry()
    out = []
    for ix in tx.walk():
        if ix.data is None:
            if ix.program_id in TOKEN_PROGRAMS:
                out.append(decode_parsed_token(ix.program_id, ix.parsed))
            else:  # system transfer: compare through the raw encoding
                info = ix.parsed["info"]
                out.append(("system", struct.pack("<IQ", 2, info["lamports"]), [info["source"], info["destination"]]))
        elif ix.program_id == "11111111111111111111111111111111":
            out.append(("system", ix.data, ix.accounts))
        elif reg.knows(ix.program_id):
            out.append(reg.decode(ix.program_id, ix.data, ix.accounts, tx.slot))
        else:
            out.append((ix.program_id, ix.data, ix.accounts))
    return out


@pytest.mark.parametrize("name", FIXTURES)
@pytest.mark.parametrize("legacy", [False, True], ids=["v0", "legacy"])
def test_same_transaction_in_three_encodings(name: str, legacy: bool) -> None:
    parsed_doc = _fixture(name)
    if legacy:
        parsed_doc = _legacy(parsed_doc)
    forms = {"jsonParsed": parsed_doc, "json": to_encoding(parsed_doc, "json"),
             "base64": to_encoding(parsed_doc, "base64")}
    txs = {k: parse_transaction(v) for k, v in forms.items()}
    ref = txs["jsonParsed"]
    assert ref.version == ("legacy" if legacy else 0)
    for enc, tx in txs.items():
        assert tx.signature == ref.signature and tx.slot == ref.slot and tx.block_time == ref.block_time, enc
        assert tx.version == ref.version, enc
        assert tx.account_keys == ref.account_keys, enc
        assert tx.writable == ref.writable, enc
        assert tx.num_signers == ref.num_signers == 1, enc
        assert (tx.fee, tx.err, tx.log_messages) == (ref.fee, ref.err, ref.log_messages), enc
        assert tx.pre_token_balances == ref.pre_token_balances, enc
        assert tx.post_token_balances == ref.post_token_balances, enc
        assert _shape(tx) == _shape(ref), enc
        assert _decoded(tx) == _decoded(ref), enc
    # raw forms carry bytes for every instruction, the parsed form only for non-parsed ones
    assert all(ix.data is not None for ix in txs["base64"].walk())
    assert [ix.data for ix in txs["base64"].walk()] == [ix.data for ix in txs["json"].walk()]


def test_v0_keys_are_static_then_loaded_writable_then_readonly() -> None:
    doc = _fixture("hsd_claim_rewards")
    tx = parse_transaction(to_encoding(doc, "json"))
    keys = doc["transaction"]["message"]["accountKeys"]
    static = [k["pubkey"] for k in keys if k["source"] == "transaction"]
    assert len(tx.account_keys) == 34 and tx.account_keys[:22] == static
    assert tx.account_keys[22:28] == [k["pubkey"] for k in keys[22:28]]
    assert all(tx.writable[22:28]) and not any(tx.writable[28:])
    assert tx.writable[:14] == [True] * 14 and not any(tx.writable[14:22])


def test_tree_paths_follow_stack_height() -> None:
    tx = parse_transaction(_fixture("lazy_distributor_distribute"))
    paths = [(ix.path, ix.stack_height) for ix in tx.walk()]
    assert paths == [("0", 1), ("1", 1), ("2", 1), ("3", 1), ("3.1", 2), ("3.1.1", 3), ("3.1.1.1", 4),
                     ("3.2", 2), ("3.2.1", 3), ("3.2.1.1", 4)]
    tx = parse_transaction(_fixture("hsd_claim_rewards"))
    assert [ix.path for ix in tx.walk()] == ["0", "1", "2", "2.1", "2.1.1", "2.1.1.1", "3", "3.1", "3.1.1", "3.1.1.1"]


def test_inner_without_stack_height_are_direct_children() -> None:
    doc = to_encoding(_fixture("lazy_distributor_distribute"), "json")
    for group in doc["meta"]["innerInstructions"]:
        for ix in group["instructions"]:
            ix.pop("stackHeight")
    tx = parse_transaction(doc)
    assert [ix.path for ix in tx.instructions[3].children] == [f"3.{i}" for i in range(1, 7)]
    assert all(not c.children for c in tx.instructions[3].children)


def test_token_balances_and_failed_flag() -> None:
    doc = _fixture("hsd_claim_rewards")
    tx = parse_transaction(doc)
    assert tx.succeeded
    pool = next(b for b in tx.pre_token_balances if b.account == "A7AjQhocZZvQXQJ5ducRF7gkconjNZfMNCjKguShoe8G")
    post = next(b for b in tx.post_token_balances if b.account == pool.account)
    assert (pool.amount, post.amount, pool.decimals) == (7525831715085, 7525831634354, 8)
    assert pool.amount - post.amount == 787 + 79944
    assert pool.mint == "hntyVP6YFm1Hg25TN9WGLqM12b8TQmcknKrdu1oxWux"
    assert pool.owner == "GjumWQJZUcUwYdMkHDPDCRFhA7AQmb1kLapqLmDAYTVY"
    doc["meta"]["err"] = {"InstructionError": [4, {"Custom": 1}]}
    failed = parse_transaction(to_encoding(doc, "base64"))
    assert not failed.succeeded and failed.err == {"InstructionError": [4, {"Custom": 1}]}
    assert len(list(failed.walk())) == 10


def test_parse_response_forms() -> None:
    doc = _fixture("hsd_claim_rewards")
    wrapped = orjson.dumps({"jsonrpc": "2.0", "id": 7, "result": to_encoding(doc, "base64")})
    assert parse_response(wrapped).signature == doc["signature"]
    assert parse_response(doc).signature == doc["signature"]
    with pytest.raises(DecodeError) as e:
        parse_response(b'{"jsonrpc":"2.0","id":1,"result":null}')
    assert e.value.reason == "rpc_error"
    with pytest.raises(DecodeError) as e:
        parse_response(b'{"jsonrpc":"2.0","id":1,"error":{"code":-32004,"message":"Block not available"}}')
    assert e.value.reason == "rpc_error" and "-32004" in e.value.detail
    with pytest.raises(DecodeError) as e:
        parse_response(b"{not json")
    assert e.value.reason == "malformed_transaction"


def test_parse_block_uses_block_slot_and_time() -> None:
    docs = [to_encoding(_fixture(n), "base64") for n in FIXTURES]
    block = {"blockTime": 1_800_000_000, "blockhash": "x", "transactions": [
        {"transaction": d["transaction"], "meta": d["meta"], "version": d["version"]} for d in docs]}
    txs = parse_block(block, 123)
    assert [t.signature for t in txs] == [_fixture(n)["signature"] for n in FIXTURES]
    assert all(t.slot == 123 and t.block_time == 1_800_000_000 for t in txs)


def test_parse_block_reports_which_transaction_is_bad() -> None:
    block = {"blockTime": 1, "transactions": [{"transaction": ["AAAA", "base64"], "meta": {}}]}
    with pytest.raises(DecodeError) as e:
        parse_block(block, 5)
    assert e.value.reason == "malformed_transaction" and "#0" in e.value.detail


def test_balance_changes_by_account_and_owner() -> None:
    from indexer.decode.balances import balance_changes, deltas_by_owner_mint

    tx = parse_transaction(_fixture("hsd_claim_rewards"))
    changes = balance_changes(tx)
    assert [(c.account, c.delta) for c in changes] == [("A7AjQhocZZvQXQJ5ducRF7gkconjNZfMNCjKguShoe8G", -80731)]
    hnt = "hntyVP6YFm1Hg25TN9WGLqM12b8TQmcknKrdu1oxWux"
    assert deltas_by_owner_mint(tx) == {("GjumWQJZUcUwYdMkHDPDCRFhA7AQmb1kLapqLmDAYTVY", hnt): -80731}
    assert len(balance_changes(tx, include_unchanged=True)) == 5


def test_parsed_instruction_accounts_skip_free_text() -> None:
    """A jsonParsed system instruction whose info holds a 32-char non-base58 seed is not malformed."""
    doc = _fixture("lazy_distributor_distribute")
    seed = "stake:0" + "l" * 25  # 32 chars, '0' and 'l' are not base58
    src = doc["transaction"]["message"]["accountKeys"][0]["pubkey"]
    doc["meta"]["innerInstructions"][0]["instructions"].append({
        "program": "system", "programId": "11111111111111111111111111111111", "stackHeight": 2,
        "parsed": {"type": "createAccountWithSeed", "info": {
            "source": src, "newAccount": src, "base": src, "seed": seed, "lamports": 1, "space": 0,
            "owner": "11111111111111111111111111111111"}}})
    tx = parse_transaction(doc)
    ix = tx.instructions[3].children[-1]
    assert ix.parsed["info"]["seed"] == seed and seed not in ix.accounts
    assert ix.accounts == [src, src, src, "11111111111111111111111111111111"]


def test_negative_program_id_index_in_json_encoding_is_malformed_not_wrapped():
    """A negative index would silently resolve to the last key (Python indexing); it must be refused."""
    import copy

    import pytest

    from indexer.decode.errors import DecodeError
    from indexer.decode.txparse import parse_transaction

    base = {
        "slot": 5, "blockTime": 1774916143, "version": "legacy",
        "transaction": {"signatures": ["1" * 64], "message": {
            "header": {"numRequiredSignatures": 1, "numReadonlySignedAccounts": 0, "numReadonlyUnsignedAccounts": 1},
            "accountKeys": ["11111111111111111111111111111111", "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"],
            "recentBlockhash": "11111111111111111111111111111111",
            "instructions": [{"programIdIndex": 1, "accounts": [0], "data": "3Bxs4h24hBtQy9rw"}]}},
        "meta": {"err": None, "fee": 5000, "preBalances": [1, 1], "postBalances": [1, 1], "innerInstructions": [],
                 "logMessages": [], "preTokenBalances": [], "postTokenBalances": [],
                 "loadedAddresses": {"writable": [], "readonly": []}},
    }
    assert parse_transaction(copy.deepcopy(base)).instructions[0].program_id.startswith("Tokenkeg")
    for field, value in (("programIdIndex", -1), ("accounts", [-1])):
        bad = copy.deepcopy(base)
        bad["transaction"]["message"]["instructions"][0][field] = value
        with pytest.raises(DecodeError) as err:
            parse_transaction(bad)
        assert err.value.reason == "malformed_transaction"
