"""The v1 JSON Schemas describe exactly what the classifier emits, and events round-trip via orjson."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from indexer.decode.txparse import parse_transaction
from indexer.networks.classify import classify_transaction
from indexer.networks.events import Commitment, FlowClass, FlowEvent, Network, Subtype
from tests.indexer.networks.builders import DC, HNT, RENDER, TxSpec, addr, anchor, cb_mint, sig, spl, tuktuk
from tests.refdata import reference_path

SCHEMAS = Path(__file__).resolve().parents[3] / "schemas" / "events" / "v1"


def validator(name: str) -> Draft202012Validator:
    schema = orjson.loads((SCHEMAS / f"{name}.json").read_bytes())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


FLOW, INSTR, DEAD, STATUS = (validator(n) for n in ("flow_event", "instruction", "dead_letter", "status"))


def sample_outputs():
    """Classifier outputs covering both networks, legs, USD, records, dead letters and a failure."""
    outs = [classify_transaction(parse_transaction(orjson.loads(reference_path(f"helium/fixtures/{n}").read_bytes())))
            for n in ("hsd_claim_rewards.json", "lazy_distributor_distribute.json")]
    owner = addr("buyer")
    burner, ata = addr("buyer.hnt"), addr("buyer.dc")
    purchase = anchor("data_credits", "mint_data_credits_v0", {"args": {"hnt_amount": 10**8, "dc_amount": None}},
                      burner=burner, recipient_token_account=ata, owner=owner, recipient=owner,
                      logs=["Program log: HNT Price is 123 * 10^-2, issuing 123000 data credits"],
                      children=[spl("burn", amount=10**8, account=burner, mint=HNT, authority=owner),
                                cb_mint(DC, ata, 123_000)])
    render_burn = spl("burnChecked", amount=2**64 - 1, decimals=8, account="GqE7wcwRw86xxMz4pNq5cV3BkM64h3bvajQRQbigYqTX",
                      mint=RENDER, authority="rbrnm7nPhfhBxPSh8qhRFrhB5MLnJGMNoyNQPvSi7vq")
    bogus = anchor("data_credits", "burn_without_tracking_v0", {"args": {"amount": 1}})
    bogus.data = bogus.data[:12]
    outs.append(classify_transaction(TxSpec("mix").add(tuktuk(purchase), render_burn, bogus)
                                     .token(burner, HNT, owner).build()))
    outs.append(classify_transaction(TxSpec("failed", err={"InstructionError": [0, "Custom"]}).add(purchase).build()))
    return outs


OUTPUTS = sample_outputs()


def test_schema_lists_exactly_the_flow_event_fields_and_vocabulary():
    schema = FLOW.schema
    fields = [f.name for f in dataclasses.fields(FlowEvent)]
    assert sorted(schema["properties"]) == sorted(fields)
    assert sorted(schema["required"]) == sorted(fields)
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["network"]["enum"] == [n.value for n in Network]
    assert props["flow_class"]["enum"] == [c.value for c in FlowClass]
    assert props["subtype"]["enum"] == [s.value for s in Subtype]
    assert props["commitment"]["enum"] == [c.value for c in Commitment]


def test_every_emitted_record_validates_and_flows_round_trip():
    flows = [f for o in OUTPUTS for f in o.flows]
    records = [r for o in OUTPUTS for r in o.instructions]
    dead = [d for o in OUTPUTS for d in o.dead_letters]
    assert len(flows) >= 6 and len(records) >= 8 and dead
    assert {f.network for f in flows} == {"helium", "render"}
    assert any(f.usd is not None for f in flows) and any(f.leg is not None for f in flows)
    for f in flows:
        raw = f.to_json()
        FLOW.validate(orjson.loads(raw))
        back = FlowEvent.from_json(raw)
        assert back == f and back.to_json() == raw
    for r in records:
        INSTR.validate(orjson.loads(orjson.dumps(r)))
    for d in dead:
        DEAD.validate(orjson.loads(orjson.dumps(d)))
    assert any(r["tx_error"] for r in records)


def test_u64_max_render_burn_survives_serialization_exactly():
    (f,) = [f for o in OUTPUTS for f in o.flows if f.network == "render"]
    assert f.amount_raw == 2**64 - 1 and f.amount == "184467440737.09551615"
    assert orjson.loads(f.to_json())["amount_raw"] == 2**64 - 1


def test_schema_rejects_what_the_model_must_never_produce():
    good = next(f for o in OUTPUTS for f in o.flows).to_dict()
    for bad in ({"flow_class": "revenue"}, {"amount_raw": -1}, {"usd": 1.5}, {"day": "31/03/2026"},
                {"extra": 1}, {"schema_version": "v2"}, {"ix_path": "0.0"}):
        with pytest.raises(ValidationError):
            FLOW.validate({**good, **bad})
    missing = dict(good)
    del missing["usd"]
    with pytest.raises(ValidationError):
        FLOW.validate(missing)


def test_status_record_shape():
    s = sig("status")
    good = {"signature": s, "slot": 5, "status": "finalized", "event_ids": [f"{s}:0", f"{s}:1.1:0"],
            "block_time": 1_774_916_143, "schema_version": "v1"}
    STATUS.validate(good)
    STATUS.validate({**good, "status": "retracted", "block_time": None})
    with pytest.raises(ValidationError):
        STATUS.validate({**good, "status": "confirmed"})


_b58 = st.sampled_from([addr(str(i)) for i in range(8)])
_events = st.builds(
    FlowEvent,
    signature=st.sampled_from([sig(str(i)) for i in range(4)]),
    ix_path=st.lists(st.integers(1, 9), max_size=3).flatmap(
        lambda inner: st.integers(0, 30).map(lambda top: ".".join([str(top), *map(str, inner)]))),
    network=st.sampled_from([n.value for n in Network]),
    flow_class=st.sampled_from([c.value for c in FlowClass]),
    subtype=st.sampled_from([s.value for s in Subtype]),
    slot=st.integers(0, 2**63 - 1), block_time=st.integers(0, 2**40),
    day=st.dates().map(lambda d: d.isoformat()).filter(lambda d: len(d) == 10),
    program_id=_b58, program=st.text(max_size=20), instruction=st.text(max_size=20), mint=_b58,
    symbol=st.sampled_from(["HNT", "DC", "RENDER", ""]), amount_raw=st.integers(0, 2**64 - 1),
    decimals=st.integers(0, 18), leg=st.none() | st.integers(0, 5), epoch=st.none() | st.integers(0, 10**6),
    usd=st.none() | st.decimals(min_value=0, max_value=10**12, places=8, allow_nan=False).map(lambda d: format(d, "f")),
    payer_owner=_b58 | st.just(""), sub_dao=st.sampled_from(["", "iot", "mobile"]),
    commitment=st.sampled_from([c.value for c in Commitment]), reason=st.text(max_size=40),
)


@settings(max_examples=150, deadline=None)
@given(_events)
def test_any_valid_event_round_trips_and_validates(ev):
    raw = ev.to_json()
    FLOW.validate(orjson.loads(raw))
    assert FlowEvent.from_json(raw) == ev
