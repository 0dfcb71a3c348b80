"""Seeds, mutators and invariants shared by the bad-input suites.

Seeds are real shapes: the recorded mainnet getTransaction results of the reference folder and
simulator transactions rendered in every encoding the RPC serves. Mutators are written against a
small `Chooser` interface so the same code runs under hypothesis (shrinkable draws) and from a
plain seeded `random.Random` (the Kafka end-to-end test needs a fixed, replayable message set).
"""

from __future__ import annotations

import base64
import copy
import json
import random
from collections.abc import Callable, Sequence
from functools import cache, lru_cache
from pathlib import Path
from typing import Any, Protocol

import orjson
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from indexer.decode.base58 import b58encode
from indexer.decode.errors import REASONS
from indexer.decode.model import Transaction
from indexer.networks.classify import ClassifiedTx
from indexer.networks.config import default_config
from tests.refdata import reference_path

REPO = Path(__file__).resolve().parents[2]
SCHEMAS = REPO / "schemas" / "events" / "v1"
FIXTURES = ("hsd_claim_rewards.json", "lazy_distributor_distribute.json")
# reasons the classifier itself gives for a Helium instruction it cannot decode or classify
CLASSIFIER_REASONS = frozenset({"no_raw_data", "missing_amount", "bad_epoch", "missing_mint", "missing_block_time"})

# values that break naive code: boundaries of every integer width, floats, odd strings, containers
SPECIAL_VALUES: tuple[Any, ...] = (
    None, True, False, 0, -1, 1, 255, 256, 65535, 65536, 2**31, 2**32, 2**53 + 1, 2**63 - 1, 2**63,
    2**64 - 1, 2**64, 2**128 - 1, 2**128, -(2**63) - 1, 1.5, -0.0, 1e308, -1e308, "", " ", "0", "-1",
    "1e999", "NaN", "Infinity", "9" * 60, "zz0OIl", "\x00", "é😀", "A" * 3000, "2026-13-45", "1970-01-01",
    "9999-12-31", [], {}, [1, "a"], {"a": {"b": []}}, [[[[[]]]]],
)


class Chooser(Protocol):
    """The source of every random choice a mutator makes."""

    def int(self, lo: int, hi: int) -> int: ...
    def pick(self, seq: Sequence) -> Any: ...
    def blob(self, lo: int, hi: int) -> bytes: ...


class RandomChooser:
    """Choices from a seeded random.Random (deterministic message sets)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def int(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def pick(self, seq: Sequence) -> Any:
        return seq[self.rng.randrange(len(seq))]

    def blob(self, lo: int, hi: int) -> bytes:
        return self.rng.randbytes(self.rng.randint(lo, hi))


class HypChooser:
    """Choices drawn from hypothesis `st.data()`, so failures shrink to a minimal mutation."""

    def __init__(self, data) -> None:
        self.data = data

    def int(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def pick(self, seq: Sequence) -> Any:
        return self.data.draw(st.sampled_from(list(seq)))

    def blob(self, lo: int, hi: int) -> bytes:
        return self.data.draw(st.binary(min_size=lo, max_size=hi))


# --------------------------------------------------------------------------------- mutators

def mutate_bytes(raw: bytes, ch: Chooser, max_ops: int = 4) -> bytes:
    """Flip bits, cut, extend, overwrite with boundary bytes, or splice random bytes in."""
    buf = bytearray(raw)
    for _ in range(ch.int(1, max_ops)):
        op = ch.pick(("flip", "cut", "extend", "set", "splice", "zero"))
        pos = ch.int(0, max(0, len(buf) - 1))
        if op == "flip" and buf:
            buf[pos] ^= 1 << ch.int(0, 7)
        elif op == "cut":
            del buf[pos:]
        elif op == "extend":
            buf += ch.blob(1, 16)
        elif op == "set" and buf:
            buf[pos] = ch.pick((0, 1, 2, 0x7F, 0x80, 0xFE, 0xFF))
        elif op == "splice":
            buf[pos:pos] = ch.blob(1, 8)
        elif op == "zero" and buf:
            end = min(len(buf), pos + ch.int(1, 16))
            buf[pos:end] = bytes(end - pos)
    return bytes(buf)


def json_paths(doc: Any, limit_list: int = 6) -> list[tuple]:
    """Every (nested) key/index path of a JSON document (long lists sampled at their head)."""
    out: list[tuple] = []

    def walk(node: Any, path: tuple) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                out.append((*path, k))
                walk(v, (*path, k))
        elif isinstance(node, list):
            for i, v in enumerate(node[:limit_list]):
                out.append((*path, i))
                walk(v, (*path, i))

    walk(doc, ())
    return out


def mutate_json(doc: Any, ch: Chooser, max_ops: int = 3, paths: list[tuple] | None = None) -> Any:
    """A deep copy of `doc` with 1..max_ops structural mutations at random paths.

    Operations: delete a key or list item, retype a value (SPECIAL_VALUES), duplicate or drop list
    items, wrap a value in a list, swap a value with another path's value, nudge integers.
    """
    doc = copy.deepcopy(doc)
    paths = paths if paths is not None else json_paths(doc)
    if not paths:
        return ch.pick(SPECIAL_VALUES)
    for _ in range(ch.int(1, max_ops)):
        path = ch.pick(paths)
        parent = _resolve(doc, path[:-1])
        key = path[-1]
        if parent is None or not _has(parent, key):
            continue
        op = ch.pick(("delete", "special", "special", "dup", "wrap", "swap", "nudge", "truncate"))
        value = parent[key]
        if op == "delete":
            del parent[key]
        elif op == "special":
            parent[key] = copy.deepcopy(ch.pick(SPECIAL_VALUES))
        elif op == "dup" and isinstance(value, list) and value:
            value.insert(ch.int(0, len(value)), copy.deepcopy(ch.pick(value)))
        elif op == "wrap":
            parent[key] = [value]
        elif op == "swap":
            other_parent = _resolve(doc, (other := ch.pick(paths))[:-1])
            if other_parent is not None and _has(other_parent, other[-1]):
                parent[key] = copy.deepcopy(other_parent[other[-1]])
        elif op == "nudge" and type(value) is int:
            parent[key] = value + ch.pick((-1, 1, -(2**32), 2**32, 2**64))
        elif op == "truncate" and isinstance(value, str | list) and value:
            parent[key] = value[: ch.int(0, len(value) - 1)]
    return doc


def _resolve(doc: Any, path: tuple) -> Any:
    node = doc
    for k in path:
        if not _has(node, k):
            return None
        node = node[k]
    return node if isinstance(node, dict | list) else None


def _has(node: Any, key: Any) -> bool:
    if isinstance(node, dict):
        return key in node
    if isinstance(node, list):
        return isinstance(key, int) and 0 <= key < len(node)
    return False


def mutate_text(raw: bytes, ch: Chooser) -> bytes:
    """Transport-level damage to a serialized response: truncation, garbage, duplicated tails."""
    op = ch.pick(("truncate", "garbage_tail", "html", "splice", "bytes"))
    cut = ch.int(0, len(raw))
    if op == "truncate":
        return raw[:cut]
    if op == "garbage_tail":
        return raw[:cut] + ch.blob(1, 32)
    if op == "html":
        return raw[: max(1, len(raw) // 3)] + b"\x00<html>bad gateway"
    if op == "splice":
        return raw[:cut] + raw[ch.int(0, len(raw)):]
    return mutate_bytes(raw, ch)


def mutate_wire(result: dict, ch: Chooser) -> dict:
    """Damage the wire bytes of a base64/base58 result and re-encode them in the same encoding."""
    out = copy.deepcopy(result)
    data, enc = out["transaction"]
    raw = base64.b64decode(data) if enc == "base64" else _b58decode_loose(data)
    raw = mutate_bytes(raw, ch)
    out["transaction"] = [base64.b64encode(raw).decode() if enc == "base64" else b58encode(raw), enc]
    return out


def _b58decode_loose(text: str) -> bytes:
    from indexer.decode.base58 import b58decode

    return b58decode(text)


# --------------------------------------------------------------------------------- seeds

@lru_cache(maxsize=1)
def sim_ledger():
    """A small simulator ledger (both networks, failures, forks, v0 + legacy) shared by the suites."""
    from indexer.devchain.ledger import SimConfig, generate_ledger

    return generate_ledger(SimConfig(seed=11, slots_per_day=160))


@lru_cache(maxsize=8)
def sim_results(encoding: str) -> tuple[bytes, ...]:
    """Every simulator transaction as its serialized getTransaction result in `encoding`."""
    from indexer.devchain.render import get_transaction_result

    led = sim_ledger()
    out = []
    for block in led.blocks:
        for tx in block.transactions:
            r = get_transaction_result(tx, encoding, True)
            r["slot"], r["blockTime"] = block.slot, block.block_time
            out.append(orjson.dumps(r))
    return tuple(out)


@lru_cache(maxsize=1)
def fixture_results() -> tuple[bytes, ...]:
    """The recorded mainnet results (jsonParsed) and their json/base64 re-encodings."""
    from indexer.decode.txforms import to_encoding

    out = []
    for name in FIXTURES:
        doc = orjson.loads(reference_path(f"helium/fixtures/{name}").read_bytes())
        out.append(orjson.dumps(doc))
        for enc in ("json", "base64"):
            out.append(orjson.dumps(to_encoding(doc, enc)))
    return tuple(out)


def seed_results() -> list[tuple[str, bytes]]:
    """(label, serialized result): fixtures in 3 encodings + the simulator in 4."""
    seeds = [(f"fixture{i}", r) for i, r in enumerate(fixture_results())]
    for enc in ("json", "jsonParsed", "base64", "base58"):
        seeds += [(f"sim-{enc}-{i}", r) for i, r in enumerate(sim_results(enc))]
    return seeds


# --------------------------------------------------------------------------------- invariants

@cache
def validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(orjson.loads((SCHEMAS / f"{name}.json").read_bytes()))


def helium_program_ids() -> frozenset[str]:
    return default_config().helium.program_ids


def check_classified(tx: Transaction, out: ClassifiedTx) -> None:
    """What must hold for any classifier output, whatever the input was.

    - every record validates against its v1 JSON Schema;
    - a failed transaction yields no flows;
    - no rule raised (`rule_error` would be a rule bug hidden in a dead letter);
    - every Helium instruction is accounted for exactly once: an instruction record, or a decode
      dead letter with a typed reason and its raw bytes (so it can be replayed).
    """
    for ev in out.flows:
        _valid("flow_event", ev.to_dict())
    for rec in out.instructions:
        _valid("instruction", rec)
    for dl in out.dead_letters:
        _valid("dead_letter", dl)
        assert dl["reason"], dl
        assert dl["reason"] != "rule_error", dl
    if tx.err is not None:
        assert out.flows == []
    helium = helium_program_ids()
    recorded = [r["ix_path"] for r in out.instructions if r["program_id"] in helium]
    dead = {d["ix_path"]: d for d in out.dead_letters if d["stage"] == "decode"}
    assert len(recorded) == len(set(recorded)), recorded
    for ix in tx.walk():
        if ix.program_id not in helium:
            continue
        if ix.path in dead:
            d = dead[ix.path]
            assert ix.path not in recorded, ix.path
            assert d["reason"] in REASONS | CLASSIFIER_REASONS, d
            assert d["raw_hex"] == (ix.data or b"").hex()
        else:
            assert ix.path in recorded, f"helium instruction {ix.path} neither recorded nor dead-lettered"


def _valid(schema: str, doc: dict) -> None:
    errors = sorted(validator(schema).iter_errors(json.loads(json.dumps(doc))), key=str)
    assert not errors, f"{schema} record fails its schema: {errors[0].message} in {doc}"


# --------------------------------------------------------------------------------- listener path

_TOPICS = None
_PROCESSOR = None


def processor():
    """The listener's real Processor (decode + classify + serialize); its publisher is never used."""
    global _TOPICS, _PROCESSOR
    if _PROCESSOR is None:
        from pipelines.kafka.topics import Topics
        from pipelines.listen.processor import KafkaProcessor

        _TOPICS = Topics("fuzz")
        _PROCESSOR = KafkaProcessor(None, _TOPICS)
    return _PROCESSOR


def listener_messages(result, signature: str, slot: int, block_time: int | None,
                      commitment: str = "confirmed") -> list:
    """What the listener would publish for one getTransaction result (as fetched: decoded JSON)."""
    from indexer.sources.types import FetchedTx

    msgs, _ids, _network = processor().messages_for(
        FetchedTx(signature, slot, block_time, commitment, result, "backfill"))
    return msgs


def check_messages(msgs: list) -> dict[str, int]:
    """Every listener message validates against its v1 schema AND becomes a row in the sink.

    A message the sink would dead-letter as invalid is a contract break between the two halves of the
    pipeline (the schema says it is fine, the table cannot hold it). Returns counts per kind.
    """
    from pipelines.sink.rows import KIND_DEADLETTER, KIND_FLOW, KIND_INSTRUCTION, Rejected, Source, parse

    processor()
    kinds = {_TOPICS.flows: (KIND_FLOW, "flow_event"), _TOPICS.instructions: (KIND_INSTRUCTION, "instruction"),
             _TOPICS.deadletter: (KIND_DEADLETTER, "dead_letter")}
    counts: dict[str, int] = {}
    for i, m in enumerate(msgs):
        kind, schema = kinds[m.topic]
        doc = orjson.loads(m.value)
        _valid(schema, doc)
        if kind == KIND_DEADLETTER:
            assert doc["reason"], doc
            assert doc["stage"] != "parse" or doc["reason"] in REASONS, doc
        try:
            parse(kind, Source(m.topic, 0, i, 0, m.key, m.value, m.headers))
        except Rejected as exc:
            raise AssertionError(f"the sink rejects a listener {kind} message: {exc}: {doc}") from None
        counts[kind] = counts.get(kind, 0) + 1
    return counts


Mutator = Callable[[bytes, Chooser], bytes]
