"""The two real fixtures decode to the independently produced values in *.decoded.json."""

from __future__ import annotations

import json
import re

import pytest

from indexer.decode.registry import default_registry
from indexer.decode.spl_token import decode_parsed_token
from indexer.decode.txparse import parse_transaction
from tests.refdata import reference_path

FIXTURES = ["hsd_claim_rewards", "lazy_distributor_distribute"]


def _load(name: str) -> tuple[dict, dict]:
    raw = json.loads(reference_path(f"helium/fixtures/{name}.json").read_text())
    expected = json.loads(reference_path(f"helium/fixtures/{name}.decoded.json").read_text())
    return raw, expected


def _expected_by_path(expected: dict, tx) -> list[tuple[str, dict]]:
    """Pair each decoded.json entry with the instruction path it describes ("where" -> path)."""
    out = []
    inner_seen: dict[int, int] = {}
    for entry in expected["decoded"]:
        m = re.match(r"top-level #(\d+)", entry["where"])
        if m:
            out.append((m.group(1), entry))
            continue
        m = re.match(r"inner of #(\d+) \(stackHeight (\d+)\)", entry["where"])
        assert m, entry["where"]
        top = int(m.group(1))
        descendants = list(tx.instructions[top].children and _descendants(tx.instructions[top]))
        k = inner_seen.get(top, 0)
        inner_seen[top] = k + 1
        ix = descendants[k]
        assert ix.stack_height == int(m.group(2))
        out.append((ix.path, entry))
    return out


def _descendants(ix):
    for c in ix.children:
        yield c
        yield from _descendants(c)


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_decodes_to_expected_values(name: str) -> None:
    raw, expected = _load(name)
    tx = parse_transaction(raw)
    assert tx.signature == expected["signature"]
    assert tx.slot == expected["slot"]
    assert tx.block_time == expected["blockTime"]
    by_path = {ix.path: ix for ix in tx.walk()}
    reg = default_registry()
    pairs = _expected_by_path(expected, tx)
    assert len(pairs) == len(expected["decoded"])
    for path, entry in pairs:
        ix = by_path[path]
        if "parsed" in entry:
            assert ix.data is None and ix.parsed == entry["parsed"]
            if entry["program"] == "spl-token":
                d = decode_parsed_token(ix.program_id, ix.parsed)
                assert d.name == entry["parsed"]["type"]
                assert d.args["amount"] == int(entry["parsed"]["info"]["amount"])
            continue
        d = reg.decode(ix.program_id, ix.data, ix.accounts, tx.slot)
        assert d.program == entry["program"], path
        assert d.name == entry["ix"], path
        assert d.args == entry["args"], path
        if "accounts" in entry:
            assert d.accounts == entry["accounts"], path
        if "extra_accounts" in entry:
            assert d.extra_accounts == entry["extra_accounts"], path
