"""Bad transaction JSON through the listener's processor: nothing crashes, every rejection is typed.

Inputs are mutated real getTransaction results: the recorded mainnet fixtures (jsonParsed and their
json/base64 re-encodings) and simulator transactions in all four encodings, damaged three ways -
structurally (keys deleted, values retyped to boundary values), in their wire bytes (base64/base58),
and in transport (truncated or garbage-tailed response bodies). Each damaged result goes through the
listener's real `KafkaProcessor.messages_for` (parse -> classify -> messages), exactly as a fetched
transaction does, and every message it produces must validate against its v1 schema and be accepted
by the sink's parser: a transaction that cannot be parsed becomes one dead letter (stage "parse")
with a typed reason, never an exception and never a message the sink would refuse.
"""

from __future__ import annotations

import base64
import json

import orjson
from hypothesis import given
from hypothesis import strategies as st

from indexer.decode.errors import REASONS, DecodeError
from indexer.decode.txparse import parse_response, parse_transaction
from tests.fuzz.corpus import (
    HypChooser,
    check_messages,
    listener_messages,
    mutate_json,
    mutate_text,
    mutate_wire,
    seed_results,
    sim_ledger,
    sim_results,
)
from tests.fuzz.profiles import budget


def _seed(label: str, raw: bytes) -> tuple[str, str, int, int | None, bytes]:
    tx = parse_transaction(orjson.loads(raw))
    return label, tx.signature, tx.slot, tx.block_time, raw


SEEDS = [_seed(label, raw) for label, raw in seed_results()]
WIRE_SEEDS = [s for s in SEEDS if b'"base64"]' in s[4] or b'"base58"]' in s[4]]


def _dumps(doc) -> bytes:
    """Serialize like a server would, including integers orjson refuses (beyond 64 bits)."""
    try:
        return orjson.dumps(doc)
    except TypeError:
        return json.dumps(doc, ensure_ascii=False).encode()


def through_listener(seed, body: bytes) -> str:
    """Feed one response body to the listener path; returns "parse:<reason>" or "ok".

    The RPC client decodes the body with orjson (a body that is not JSON is a transport error there,
    retried, and never reaches the processor; parse_response must still type it), then hands the
    result to the processor with the signature/slot/blockTime it listed.
    """
    _label, sig, slot, block_time, _raw = seed
    try:
        result = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            parse_response(body)
        except DecodeError as exc:
            assert exc.reason in REASONS
            return f"parse:{exc.reason}"
        raise AssertionError("a body that is not JSON parsed as a transaction") from None
    msgs = listener_messages(result, sig, slot, block_time)
    counts = check_messages(msgs)
    if counts.get("deadletter") == 1 and len(msgs) == 1:
        reason = orjson.loads(msgs[0].value)["reason"]
        return f"parse:{reason}" if orjson.loads(msgs[0].value)["stage"] == "parse" else "ok"
    return "ok"


def test_unmutated_seeds_go_through_cleanly_and_match_the_simulator_truth():
    """The control: every seed yields messages without any parse dead letter, and the simulator's
    seeds give exactly its expected flow events in every encoding (so the mutations below start from
    inputs the pipeline fully understands)."""
    for seed in SEEDS:
        assert through_listener(seed, seed[4]) == "ok", seed[0]
    expected = {e["event_id"] for e in sim_ledger().expected_events()}
    for enc in ("json", "jsonParsed", "base64", "base58"):
        got = set()
        for raw in sim_results(enc):
            tx = parse_transaction(orjson.loads(raw))
            for m in listener_messages(orjson.loads(raw), tx.signature, tx.slot, tx.block_time):
                if m.topic.endswith(".flows.v1"):
                    got.add(orjson.loads(m.value)["event_id"])
        assert got == expected, enc


@budget(1500)
@given(data=st.data())
def test_structurally_mutated_results(data):
    ch = HypChooser(data)
    seed = SEEDS[ch.int(0, len(SEEDS) - 1)]
    doc = mutate_json(orjson.loads(seed[4]), ch)
    through_listener(seed, _dumps(doc))


@budget(1200)
@given(data=st.data())
def test_damaged_wire_bytes(data):
    ch = HypChooser(data)
    seed = WIRE_SEEDS[ch.int(0, len(WIRE_SEEDS) - 1)]
    through_listener(seed, orjson.dumps(mutate_wire(orjson.loads(seed[4]), ch)))


@budget(1200)
@given(data=st.data())
def test_damaged_response_bodies(data):
    ch = HypChooser(data)
    seed = SEEDS[ch.int(0, len(SEEDS) - 1)]
    through_listener(seed, mutate_text(seed[4], ch))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.sampled_from(["jsonrpc", "result", "error", "id", "transaction", "meta", "slot", "blockTime",
                         "message", "signatures", "accountKeys", "instructions", "header", "version"]),
        inner, max_size=5),
    max_leaves=25)


@budget(600)
@given(value=JSON_VALUES | st.binary(max_size=200))
def test_arbitrary_json_and_bytes(value):
    through_listener(SEEDS[0], value if isinstance(value, bytes) else _dumps(value))


def test_a_damaged_result_becomes_one_typed_parse_dead_letter_with_its_bytes():
    """The concrete shape of a rejection: one dead letter, stage parse, typed reason, raw bytes kept."""
    seed = next(s for s in SEEDS if b'"base64"]' in s[4])
    doc = orjson.loads(seed[4])
    doc["transaction"][0] = doc["transaction"][0][:40]           # cut the wire bytes short
    msgs = listener_messages(doc, seed[1], seed[2], seed[3])
    assert len(msgs) == 1 and msgs[0].topic == "fuzz.deadletter.v1"
    dl = orjson.loads(msgs[0].value)
    assert (dl["stage"], dl["reason"], dl["signature"], dl["slot"]) == (
        "parse", "malformed_transaction", seed[1], seed[2])
    assert dl["raw_hex"] == base64.b64decode(doc["transaction"][0]).hex()
    assert check_messages(msgs) == {"deadletter": 1}
