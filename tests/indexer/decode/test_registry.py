"""Registry behaviour: program/discriminator keying, slot eras, typed errors, encode inverse."""

from __future__ import annotations

import pytest

from indexer.decode.eras import BOUNDARIES, slot_for_time, time_for_slot
from indexer.decode.errors import DecodeError
from indexer.decode.registry import DecodedInstruction, default_registry

HSD = "hdaoVTCqhfHHo75XdAMxBKdUqvq1i5bF23sisBqVgGR"
CB = "circAbx64bbsscPbQzZAUvuXpHqrCe6fLMzc2uKXz9g"
VSR = "hvsrNC3NKbcryqDs2DocYHZ9yPKEVzdSjQG6RVtK1s8"
DC = "credMBJhYFzfn7NxBMdU4aUqFggAjgztaCcv2Fo6fPT"
TOKEN = "TokenkegQfeZyiNwAJbNbGKPFXCWuBvf9Ss623VQ5DA"
KEYS = [f"{c * 32}" for c in "ABCDEFGHJKLMNPQRSTUVWXYZ"]  # 32 chars: valid-looking base58 labels


def test_same_discriminator_decodes_per_program() -> None:
    reg = default_registry()
    data = reg.encode(CB, "transfer_v0", {"args": {"amount": 5}})
    assert data[:8].hex() == "a2b6c16166557fbd"
    cb = reg.decode(CB, data, KEYS[:5])
    vsr = reg.decode(VSR, data, KEYS[:10])
    assert (cb.program, cb.name, cb.args) == ("circuit_breaker", "transfer_v0", {"args": {"amount": 5}})
    assert list(cb.accounts) == ["from", "to", "owner", "circuit_breaker", "token_program"]
    assert vsr.program == "voter_stake_registry" and vsr.name == "transfer_v0"
    assert list(vsr.accounts) != list(cb.accounts)


def test_issue_rewards_v0_layout_by_slot() -> None:
    reg = default_registry()
    data = reg.encode(HSD, "issue_rewards_v0", {"args": {"epoch": 20000}})
    accounts = KEYS[:16]
    pre = reg.decode(HSD, data, accounts[:14], BOUNDARIES["hip138"].slot - 1)
    post = reg.decode(HSD, data, accounts[:14], BOUNDARIES["hip138"].slot)
    hip149 = reg.decode(HSD, data, accounts, BOUNDARIES["hip149"].slot)
    latest = reg.decode(HSD, data, accounts)
    assert pre.accounts["dnt_circuit_breaker"] == accounts[5]
    assert pre.accounts["rewards_escrow"] == accounts[9] and pre.accounts["delegator_pool"] == accounts[10]
    assert "dnt_circuit_breaker" not in post.accounts
    assert post.accounts["hnt_mint"] == accounts[5] and post.accounts["rewards_escrow"] == accounts[8]
    assert post.accounts["prev_sub_dao_epoch_info"] == accounts[13]
    assert "supplement_vault" not in post.accounts
    assert hip149.accounts["supplement_vault"] == accounts[14]
    assert hip149.accounts["council_vault"] == accounts[15]
    assert latest == hip149
    assert pre.args == post.args == {"args": {"epoch": 20000}}


def test_era_slots_follow_the_documented_mapping() -> None:
    b = BOUNDARIES["hip138"]
    assert b.unix == 1738022400  # 2025-01-28T00:00:00Z
    assert b.slot == slot_for_time(b.unix) == 409_977_754 + (b.unix - 1_774_916_143) * 5 // 2 == 317_743_396
    assert time_for_slot(slot_for_time(1_774_916_143)) == 1_774_916_143


def test_typed_errors_carry_reason_and_raw() -> None:
    reg = default_registry()
    with pytest.raises(DecodeError) as e:
        reg.decode("11111111111111111111111111111111", b"\x02\0\0\0", [])
    assert e.value.reason == "unknown_program" and e.value.raw == b"\x02\0\0\0"
    with pytest.raises(DecodeError) as e:
        reg.decode(DC, bytes(8), [])
    assert e.value.reason == "unknown_discriminator" and e.value.program_id == DC
    good = reg.encode(DC, "burn_without_tracking_v0", {"args": {"amount": 7}})
    with pytest.raises(DecodeError) as e:
        reg.decode(DC, good[:-1], [])
    assert e.value.reason == "short_data" and e.value.raw == good[:-1]
    with pytest.raises(DecodeError) as e:
        reg.decode(DC, good + b"\0", [])
    assert e.value.reason == "trailing_data"


def test_spl_token_through_the_registry() -> None:
    reg = default_registry()
    assert reg.program_name(TOKEN) == "spl-token" and reg.knows(TOKEN)
    data = bytes.fromhex("0f15cd5b070000000008")  # BurnChecked 123456789, decimals 8 (render.md §4)
    d = reg.decode(TOKEN, data, KEYS[:5])
    assert d == DecodedInstruction("spl-token", "burnChecked", {"amount": 123456789, "decimals": 8},
                                   {"account": KEYS[0], "mint": KEYS[1], "authority": KEYS[2]}, KEYS[3:5])
    assert reg.encode(TOKEN, "burnChecked", {"amount": 123456789, "decimals": 8}) == data


def test_instruction_spec_exposes_account_flags_by_slot() -> None:
    reg = default_registry()
    ix = reg.instruction_spec(HSD, "issue_rewards_v0", BOUNDARIES["hip149"].slot)
    flags = {a.name: (a.writable, a.signer, a.optional) for a in ix.accounts}
    assert flags["supplement_vault"] == (True, False, True)
    assert flags["dao"][2] is False
    pre = reg.instruction_spec(HSD, "issue_rewards_v0", 0)
    assert "dnt_circuit_breaker" in [a.name for a in pre.accounts]
    with pytest.raises(KeyError):
        reg.instruction_spec(HSD, "no_such_instruction_v0")
    with pytest.raises(KeyError):
        reg.instruction_spec("11111111111111111111111111111111", "transfer")


def test_decode_error_pickles_with_its_data() -> None:
    import pickle

    e = DecodeError("short_data", "x", raw=b"\x01", program_id=DC)
    back = pickle.loads(pickle.dumps(e))
    assert (back.reason, back.detail, back.raw, back.program_id) == ("short_data", "x", b"\x01", DC)
    assert back.to_dict() == {"reason": "short_data", "detail": "x", "raw_hex": "01", "program_id": DC}


def test_add_idl_versions_by_slot_range() -> None:
    import json

    from indexer.decode.registry import ProgramRegistry
    from tests.refdata import reference_path

    hexb = "hexbnKYoA2GercNNhHUCCfrTRWrHjT6ujKPXTa5NPqJ"
    old = json.loads(reference_path("helium/idls/helium-anchor-gen-history/hexboosting__2024-08-02__a0e363d.json")
                     .read_text())
    new = json.loads(reference_path("helium/idls/helium-wallet-rs/hexboosting.json").read_text())
    reg = ProgramRegistry()
    reg.add_idl(new, from_slot=1000)           # legacy names are camelCase, 0.30 snake_case
    reg.add_idl(old, program_id=hexb, from_slot=0, until_slot=1000)
    assert reg.program_name(hexb) == "hexboosting" and reg.knows(hexb)
    old_data = bytes.fromhex("92f69f33b423b544") + (7).to_bytes(8, "little") + (1).to_bytes(4, "little") \
        + (1).to_bytes(4, "little") + (3).to_bytes(2, "little") + bytes([2])
    d_old = reg.decode(hexb, old_data, KEYS[:11], 999)
    assert d_old.name == "boostV0" and d_old.accounts["priceOracle"] == KEYS[4]
    assert d_old.args == {"args": {"location": 7, "version": 1, "amounts": [{"period": 3, "amount": 2}]}}
    with pytest.raises(DecodeError) as e:  # the newer layout has device_type: one byte short
        reg.decode(hexb, old_data, KEYS[:12], 1000)
    assert e.value.reason == "short_data"
    d_new = reg.decode(hexb, old_data + bytes([1]), KEYS[:12], 1000)
    assert d_new.name == "boost_v0" and d_new.accounts["data_credits"] == KEYS[4]
    assert d_new.args["args"]["device_type"] == {"CbrsOutdoor": None}


def test_decoders_compile_on_first_use_and_compile_all_compiles_every_instruction() -> None:
    """Decoders are compiled on first use (anchor_idl._lazy_decoders); compile_all() compiles all of
    them (the workers' fork server), so a generator bug still surfaces for every instruction here."""
    from indexer.decode.registry import ProgramRegistry, load_specs

    reg = ProgramRegistry()
    for spec in load_specs():
        reg.add_spec(spec)
    ix = reg.instruction(CB, bytes.fromhex("a2b6c16166557fbd"))
    assert getattr(ix.decode_full, "lazy", None) is not None          # not compiled yet
    data = reg.encode(CB, "transfer_v0", {"args": {"amount": 7}})
    first = reg.decode(CB, data, KEYS[:5])
    assert getattr(ix.decode_full, "lazy", None) is None              # replaced by the compiled decoder
    assert getattr(ix.decode_args, "lazy", None) is None
    assert "def decode_full(d, a):" in ix.decode_full.__source__
    assert (first.name, first.args) == ("transfer_v0", {"args": {"amount": 7}})
    assert reg.decode(CB, data, KEYS[:5]) == first
    n = reg.compile_all()
    assert n >= 200
    every = {id(i): i for p in reg._anchor.values() for _f, _u, _s, comp in p.layers for i in comp.by_disc.values()}
    assert len(every) == n
    assert all(getattr(i.decode_full, "lazy", None) is None and getattr(i.decode_args, "lazy", None) is None
               for i in every.values())
    assert reg.compile_all() == n                                      # idempotent
    # a lazily compiled registry decodes exactly like an eagerly compiled one
    eager = default_registry()
    eager.compile_all()
    assert eager.decode(CB, data, KEYS[:5]) == first
