"""SPL Token / Token-2022 value instructions: raw bytes and jsonParsed give the same decode."""

from __future__ import annotations

import pytest
from solders.pubkey import Pubkey  # noqa: E402

from indexer.decode.errors import DecodeError
from indexer.decode.registry import default_registry
from indexer.decode.spl_token import (
    TOKEN_2022_PROGRAM_ID,
    TOKEN_PROGRAM_ID,
    decode_parsed_token,
    decode_token_instruction,
    encode_token_instruction,
)

SRC, DST, MINT, AUTH, MS, S1, S2 = (str(Pubkey.from_bytes(bytes([i + 1]) * 32)) for i in range(7))


def _ui(amount: int, decimals: int) -> dict:
    return {"amount": str(amount), "decimals": decimals, "uiAmount": amount / 10**decimals,
            "uiAmountString": str(amount / 10**decimals)}


# (name, args, raw account order, jsonParsed info) as the RPC renders them (single authority)
CASES = [
    ("transfer", {"amount": 5}, [SRC, DST, AUTH],
     {"source": SRC, "destination": DST, "amount": "5", "authority": AUTH}),
    ("transferChecked", {"amount": 123456789, "decimals": 8}, [SRC, MINT, DST, AUTH],
     {"source": SRC, "mint": MINT, "destination": DST, "tokenAmount": _ui(123456789, 8), "authority": AUTH}),
    ("mintTo", {"amount": 2**64 - 1}, [MINT, DST, AUTH],
     {"mint": MINT, "account": DST, "amount": str(2**64 - 1), "mintAuthority": AUTH}),
    ("mintToChecked", {"amount": 7, "decimals": 0}, [MINT, DST, AUTH],
     {"mint": MINT, "account": DST, "tokenAmount": _ui(7, 0), "mintAuthority": AUTH}),
    ("burn", {"amount": 787}, [SRC, MINT, AUTH],
     {"account": SRC, "mint": MINT, "amount": "787", "authority": AUTH}),
    ("burnChecked", {"amount": 123456789, "decimals": 8}, [SRC, MINT, AUTH],
     {"account": SRC, "mint": MINT, "tokenAmount": _ui(123456789, 8), "authority": AUTH}),
]


@pytest.mark.parametrize("program", [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID])
@pytest.mark.parametrize(("name", "args", "accounts", "info"), CASES, ids=[c[0] for c in CASES])
def test_raw_and_parsed_agree(program: str, name: str, args: dict, accounts: list, info: dict) -> None:
    raw = encode_token_instruction(program, name, args)
    d_raw = decode_token_instruction(program, raw, accounts)
    d_parsed = decode_parsed_token(program, {"type": name, "info": info})
    assert d_raw == d_parsed
    assert d_raw.program == ("spl-token" if program == TOKEN_PROGRAM_ID else "spl-token-2022")
    assert d_raw.name == name and d_raw.args == args and d_raw.extra_accounts == []
    assert default_registry().decode(program, raw, accounts) == d_raw


@pytest.mark.parametrize(("name", "args", "accounts", "info"), CASES, ids=[c[0] for c in CASES])
def test_multisig_signers(name: str, args: dict, accounts: list, info: dict) -> None:
    raw = encode_token_instruction(TOKEN_PROGRAM_ID, name, args)
    ms_accounts = accounts[:-1] + [MS, S1, S2]
    info = dict(info)
    role = "mintAuthority" if "mintAuthority" in info else "authority"
    del info[role]
    info["multisigMintAuthority" if role == "mintAuthority" else "multisigAuthority"] = MS
    info["signers"] = [S1, S2]
    d_raw = decode_token_instruction(TOKEN_PROGRAM_ID, raw, ms_accounts)
    d_parsed = decode_parsed_token(TOKEN_PROGRAM_ID, {"type": name, "info": info})
    assert d_raw == d_parsed
    assert d_raw.accounts[role] == MS and d_raw.extra_accounts == [S1, S2]


def test_render_reference_encodings() -> None:
    """render.md §4 examples: amount 123456789 = 1.23456789 RENDER."""
    expected = {"burn": "0815cd5b0700000000", "burnChecked": "0f15cd5b070000000008",
                "mintTo": "0715cd5b0700000000", "mintToChecked": "0e15cd5b070000000008",
                "transfer": "0315cd5b0700000000"}
    for name, hexdata in expected.items():
        args = {"amount": 123456789} | ({"decimals": 8} if name.endswith("Checked") else {})
        assert encode_token_instruction(TOKEN_PROGRAM_ID, name, args).hex() == hexdata
        assert decode_token_instruction(TOKEN_PROGRAM_ID, bytes.fromhex(hexdata), [SRC, MINT, AUTH]).args == args


def test_transfer_checked_with_fee_token_2022_only() -> None:
    args = {"amount": 1000, "decimals": 6, "fee": 3}
    raw = encode_token_instruction(TOKEN_2022_PROGRAM_ID, "transferCheckedWithFee", args)
    assert raw[:2] == bytes([26, 1]) and len(raw) == 19
    d = decode_token_instruction(TOKEN_2022_PROGRAM_ID, raw, [SRC, MINT, DST, AUTH])
    parsed = decode_parsed_token(TOKEN_2022_PROGRAM_ID, {"type": "transferCheckedWithFee", "info": {
        "source": SRC, "mint": MINT, "destination": DST, "tokenAmount": _ui(1000, 6),
        "feeAmount": _ui(3, 6), "authority": AUTH}})
    assert d == parsed and d.args == args
    with pytest.raises(DecodeError) as e:
        decode_token_instruction(TOKEN_PROGRAM_ID, raw, [])
    assert e.value.reason == "unknown_discriminator"


@pytest.mark.parametrize(("hexdata", "reason"), [
    ("", "short_data"), ("03", "short_data"), ("030100000000000000ff", "trailing_data"),
    ("0c0100000000000000", "short_data"), ("63", "unknown_discriminator"), ("0601", "short_data"),
    ("060103", "bad_enum_variant"), ("060901", "bad_enum_variant"),
])
def test_token_errors(hexdata: str, reason: str) -> None:
    with pytest.raises(DecodeError) as e:
        decode_token_instruction(TOKEN_PROGRAM_ID, bytes.fromhex(hexdata), [SRC])
    assert e.value.reason == reason and e.value.program_id == TOKEN_PROGRAM_ID


def test_set_authority_and_other_tags_round_trip() -> None:
    for name, args in [("setAuthority", {"authorityType": "mintTokens", "newAuthority": None}),
                       ("setAuthority", {"authorityType": "closeAccount", "newAuthority": AUTH}),
                       ("approve", {"amount": 9}), ("closeAccount", {}), ("initializeAccount3", {"owner": AUTH}),
                       ("initializeMint2", {"decimals": 8, "mintAuthority": AUTH, "freezeAuthority": None})]:
        raw = encode_token_instruction(TOKEN_PROGRAM_ID, name, args)
        d = decode_token_instruction(TOKEN_PROGRAM_ID, raw, [SRC, DST, AUTH])
        assert (d.name, d.args) == (name, args)
