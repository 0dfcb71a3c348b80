"""Every IDL type form the compiler supports, on a synthetic IDL (the Helium IDLs use no
floats, u256, coption, tuple structs, tuple/struct enum variants, aliases or generics)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.decode.anchor_idl import CompiledIdl, load_idl, snake_case
from indexer.decode.errors import DecodeError
from tests.indexer.decode.borsh_ref import RefIdl

PK = "hntyVP6YFm1Hg25TN9WGLqM12b8TQmcknKrdu1oxWux"

ALL_TYPES_IDL = {
    "address": "11111111111111111111111111111111",
    "metadata": {"name": "all_types", "version": "0.0.1", "spec": "0.1.0"},
    "instructions": [
        {
            "name": "everything",
            "discriminator": [1, 2, 3, 4, 5, 6, 7, 8],
            "accounts": [
                {"name": "payer", "writable": True, "signer": True},
                {"name": "group", "accounts": [{"name": "inner_a"}, {"name": "nested", "accounts": [{"name": "deep"}]}]},
                {"name": "maybe", "optional": True},
            ],
            "args": [
                {"name": "a_u8", "type": "u8"}, {"name": "a_i8", "type": "i8"},
                {"name": "a_u16", "type": "u16"}, {"name": "a_i16", "type": "i16"},
                {"name": "a_u32", "type": "u32"}, {"name": "a_i32", "type": "i32"},
                {"name": "a_u64", "type": "u64"}, {"name": "a_i64", "type": "i64"},
                {"name": "a_u128", "type": "u128"}, {"name": "a_i128", "type": "i128"},
                {"name": "a_u256", "type": "u256"}, {"name": "a_i256", "type": "i256"},
                {"name": "a_f32", "type": "f32"}, {"name": "a_f64", "type": "f64"},
                {"name": "a_bool", "type": "bool"}, {"name": "a_string", "type": "string"},
                {"name": "a_bytes", "type": "bytes"}, {"name": "a_pubkey", "type": "pubkey"},
                {"name": "a_option", "type": {"option": "u64"}},
                {"name": "a_coption", "type": {"coption": "pubkey"}},
                {"name": "a_vec_u8", "type": {"vec": "u8"}},
                {"name": "a_vec_u16", "type": {"vec": "u16"}},
                {"name": "a_vec_str", "type": {"vec": "string"}},
                {"name": "a_arr_u8", "type": {"array": ["u8", 4]}},
                {"name": "a_arr_i32", "type": {"array": ["i32", 3]}},
                {"name": "a_arr_pk", "type": {"array": ["pubkey", 2]}},
                {"name": "a_vec_vec", "type": {"vec": {"vec": "bool"}}},
                {"name": "a_struct", "type": {"defined": {"name": "Inner"}}},
                {"name": "a_tuple", "type": {"defined": {"name": "Pair"}}},
                {"name": "a_enum", "type": {"defined": {"name": "Shape"}}},
                {"name": "a_unit_enum", "type": {"defined": {"name": "Kind"}}},
                {"name": "a_alias", "type": {"defined": {"name": "Amount"}}},
                {"name": "a_opt_struct", "type": {"option": {"defined": {"name": "Inner"}}}},
                {"name": "a_vec_enum", "type": {"vec": {"defined": {"name": "Shape"}}}},
            ],
        }
    ],
    "types": [
        {"name": "Inner", "type": {"kind": "struct", "fields": [
            {"name": "x", "type": "u64"}, {"name": "label", "type": "string"},
            {"name": "kind", "type": {"defined": {"name": "Kind"}}}]}},
        {"name": "Pair", "type": {"kind": "struct", "fields": ["u16", {"option": "i64"}]}},
        {"name": "Shape", "type": {"kind": "enum", "variants": [
            {"name": "Empty"},
            {"name": "Circle", "fields": ["u32"]},
            {"name": "Rect", "fields": [{"name": "w", "type": "u32"}, {"name": "h", "type": "u32"},
                                        {"name": "inner", "type": {"defined": {"name": "Inner"}}}]},
        ]}},
        {"name": "Kind", "type": {"kind": "enum", "variants": [{"name": "A"}, {"name": "B"}, {"name": "C"}]}},
        {"name": "Amount", "type": {"kind": "type", "alias": "u128"}},
    ],
}


def _compiled() -> CompiledIdl:
    return CompiledIdl(ALL_TYPES_IDL)


@settings(max_examples=400 if os.environ.get("DEPINFLOW_LONG") == "1" else 60, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_all_types_round_trip(data) -> None:
    ref = RefIdl(ALL_TYPES_IDL)
    ix = ALL_TYPES_IDL["instructions"][0]
    args = data.draw(ref.args_strategy(ix))
    raw = ref.encode_ix(ix, args)
    c = _compiled()
    got_ix, got = c.decode(raw)
    assert got == args
    assert c.encode("everything", args) == raw


def test_group_accounts_flatten_with_dotted_names() -> None:
    c = _compiled()
    ix = c.by_name["everything"]
    assert ix.account_names == ("payer", "group.inner_a", "group.nested.deep", "maybe")
    assert [a.optional for a in ix.accounts] == [False, False, False, True]
    assert ix.accounts[0].writable and ix.accounts[0].signer


def test_exact_values_of_wide_and_float_types() -> None:
    c = _compiled()
    args = _sample_args()
    raw = c.encode("everything", args)
    _, got = c.decode(raw)
    assert got["a_u128"] == 2**128 - 1 and got["a_i128"] == -(2**127)
    assert got["a_u256"] == 2**256 - 1 and got["a_i256"] == -(2**255) + 7
    assert got["a_f32"] == 1.5 and got["a_f64"] == -2.25
    assert got["a_enum"] == {"Rect": {"w": 3, "h": 4, "inner": {"x": 1, "label": "é", "kind": {"B": None}}}}
    assert got["a_tuple"] == [7, None]
    assert got["a_coption"] == PK and got["a_arr_u8"] == b"\x01\x02\x03\x04"


def _sample_args() -> dict:
    inner = {"x": 1, "label": "é", "kind": {"B": None}}
    return {
        "a_u8": 255, "a_i8": -128, "a_u16": 65535, "a_i16": -1, "a_u32": 2**32 - 1, "a_i32": -(2**31),
        "a_u64": 2**64 - 1, "a_i64": -(2**63), "a_u128": 2**128 - 1, "a_i128": -(2**127),
        "a_u256": 2**256 - 1, "a_i256": -(2**255) + 7, "a_f32": 1.5, "a_f64": -2.25, "a_bool": True,
        "a_string": "hé", "a_bytes": b"\x00\xff", "a_pubkey": PK, "a_option": None, "a_coption": PK,
        "a_vec_u8": b"abc", "a_vec_u16": [1, 65535], "a_vec_str": ["x", ""], "a_arr_u8": b"\x01\x02\x03\x04",
        "a_arr_i32": [-1, 0, 1], "a_arr_pk": [PK, PK], "a_vec_vec": [[True], []], "a_struct": inner,
        "a_tuple": [7, None], "a_enum": {"Rect": {"w": 3, "h": 4, "inner": inner}},
        "a_unit_enum": {"C": None}, "a_alias": 10**30, "a_opt_struct": inner,
        "a_vec_enum": [{"Empty": None}, {"Circle": [9]}],
    }


# ------------------------------------------------------------------ typed errors

STRING_IDL = {
    "address": "11111111111111111111111111111111",
    "metadata": {"name": "t", "spec": "0.1.0"},
    "instructions": [
        {"name": "s", "discriminator": [9] * 8, "accounts": [], "args": [{"name": "v", "type": "string"}]},
        {"name": "v", "discriminator": [8] * 8, "accounts": [], "args": [{"name": "v", "type": {"vec": "u64"}}]},
        {"name": "e", "discriminator": [7] * 8, "accounts": [],
         "args": [{"name": "v", "type": {"defined": {"name": "Kind"}}}]},
        {"name": "b", "discriminator": [6] * 8, "accounts": [], "args": [{"name": "v", "type": "bool"}]},
        {"name": "o", "discriminator": [5] * 8, "accounts": [], "args": [{"name": "v", "type": {"option": "u8"}}]},
    ],
    "types": [{"name": "Kind", "type": {"kind": "enum", "variants": [{"name": "A"}, {"name": "B"}]}}],
}


@pytest.mark.parametrize(("hexdata", "reason"), [
    ("0909090909090909" + "02000000" + "fffe", "bad_utf8"),
    ("0909090909090909" + "ffffff7f" + "41", "absurd_length"),
    ("0909090909090909" + "05000000" + "4142", "short_data"),
    ("0909090909090909" + "01000000" + "41" + "00", "trailing_data"),
    ("0808080808080808" + "00000010", "absurd_length"),
    ("0808080808080808" + "02000000" + "0100000000000000", "short_data"),
    ("0707070707070707" + "02", "bad_enum_variant"),
    ("0606060606060606" + "02", "bad_bool"),
    ("0505050505050505" + "02", "bad_enum_variant"),
    ("0505050505050505", "short_data"),
    ("0101010101010101", "unknown_discriminator"),
    ("0909", "short_data"),
])
def test_typed_errors(hexdata: str, reason: str) -> None:
    c = CompiledIdl(STRING_IDL)
    raw = bytes.fromhex(hexdata)
    with pytest.raises(DecodeError) as e:
        c.decode(raw)
    assert e.value.reason == reason


def test_legacy_spec_names_and_discriminators() -> None:
    legacy = {
        "version": "0.1.0", "name": "legacy_prog",
        "instructions": [{"name": "mintDataCreditsV0", "accounts": [
            {"name": "dataCredits", "isMut": True, "isSigner": False},
            {"name": "group", "accounts": [{"name": "subAccount", "isMut": False, "isSigner": True}]}],
            "args": [{"name": "args", "type": {"defined": "Args"}}]}],
        "types": [{"name": "Args", "type": {"kind": "struct", "fields": [
            {"name": "hntAmount", "type": {"option": "u64"}}, {"name": "owner", "type": "publicKey"}]}}],
    }
    norm = load_idl(legacy)
    assert norm.spec == "legacy"
    c = CompiledIdl(norm)
    ix = c.by_name["mintDataCreditsV0"]
    assert ix.discriminator.hex() == "4e6da984905edd39"  # programs.md: mint_data_credits_v0
    assert ix.account_names == ("dataCredits", "group.subAccount")
    raw = c.encode("mintDataCreditsV0", {"args": {"hntAmount": 5, "owner": PK}})
    assert c.decode(raw)[1] == {"args": {"hntAmount": 5, "owner": PK}}


@pytest.mark.parametrize(("name", "snake"), [
    ("mintDataCreditsV0", "mint_data_credits_v0"), ("setCurrentRewardsWrapperV2", "set_current_rewards_wrapper_v2"),
    ("issueIotOperationsFundV0", "issue_iot_operations_fund_v0"), ("already_snake_v0", "already_snake_v0"),
    ("tempUpdateSubDaoEpochInfo", "temp_update_sub_dao_epoch_info"), ("initialize", "initialize"),
])
def test_snake_case(name: str, snake: str) -> None:
    assert snake_case(name) == snake


def test_generics_are_substituted() -> None:
    idl = {
        "address": "11111111111111111111111111111111", "metadata": {"name": "g", "spec": "0.1.0"},
        "instructions": [{"name": "g", "discriminator": [1] * 8, "accounts": [], "args": [
            {"name": "w", "type": {"defined": {"name": "Wrapper", "generics": [
                {"kind": "type", "type": "u16"}, {"kind": "const", "value": "3"}]}}}]}],
        "types": [{"name": "Wrapper", "generics": [{"kind": "type", "name": "T"},
                                                   {"kind": "const", "name": "N", "type": "usize"}],
                   "type": {"kind": "struct", "fields": [
                       {"name": "items", "type": {"array": [{"generic": "T"}, {"generic": "N"}]}},
                       {"name": "one", "type": {"generic": "T"}}]}}],
    }
    c = CompiledIdl(idl)
    raw = bytes([1] * 8) + (1).to_bytes(2, "little") + (2).to_bytes(2, "little") + (3).to_bytes(2, "little") \
        + (9).to_bytes(2, "little")
    assert c.decode(raw)[1] == {"w": {"items": [1, 2, 3], "one": 9}}
    assert c.encode("g", {"w": {"items": [1, 2, 3], "one": 9}}) == raw


def test_recursive_type_decodes_through_its_own_function() -> None:
    idl = {
        "address": "11111111111111111111111111111111", "metadata": {"name": "r", "spec": "0.1.0"},
        "instructions": [{"name": "r", "discriminator": [2] * 8, "accounts": [],
                          "args": [{"name": "tree", "type": {"defined": {"name": "Node"}}}]}],
        "types": [{"name": "Node", "type": {"kind": "struct", "fields": [
            {"name": "v", "type": "u8"}, {"name": "kids", "type": {"vec": {"defined": {"name": "Node"}}}}]}}],
    }
    c = CompiledIdl(idl)
    tree = {"v": 1, "kids": [{"v": 2, "kids": []}, {"v": 3, "kids": [{"v": 4, "kids": []}]}]}
    raw = c.encode("r", {"tree": tree})
    assert c.decode(raw)[1] == {"tree": tree}
