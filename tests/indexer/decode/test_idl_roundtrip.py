"""Every instruction of every stored Helium IDL round-trips: hypothesis args -> independent
test-side Borsh encoder -> project decoder == args, and project encoder == reference bytes.

Default: anchor030 + helium-wallet-rs (0.30 spec) and legacy + legacy-pre-hip138 (legacy spec)
with a few examples each; DEPINFLOW_LONG=1 adds the helium-anchor-gen-history series and many
more examples.
"""

from __future__ import annotations

import json
import os
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.decode.anchor_idl import CompiledIdl
from tests.indexer.decode.borsh_ref import RefIdl, ref_discriminator
from tests.refdata import reference_path

LONG = os.environ.get("DEPINFLOW_LONG") == "1"
DIRS = ["anchor030", "helium-wallet-rs", "legacy", "legacy-pre-hip138"]
if LONG:
    DIRS.append("helium-anchor-gen-history")
EXAMPLES = 150 if LONG else 8


def _files() -> list[str]:
    root = reference_path("helium/idls")
    return sorted(str(p.relative_to(root)) for d in DIRS for p in (root / d).glob("*.json"))


@cache
def _load(rel: str) -> tuple[dict, RefIdl, CompiledIdl]:
    idl = json.loads(reference_path(f"helium/idls/{rel}").read_text())
    return idl, RefIdl(idl), CompiledIdl(idl)


def _cases() -> list[tuple[str, str]]:
    cases = []
    for rel in _files():
        idl = json.loads(reference_path(f"helium/idls/{rel}").read_text())
        cases += [(rel, ix["name"]) for ix in idl["instructions"]]
    return cases


CASES = _cases()


def test_every_idl_file_compiles_with_matching_discriminators() -> None:
    files = _files()
    assert len(files) >= 40
    for rel in files:
        idl, _, compiled = _load(rel)
        assert len(compiled.by_disc) == len(idl["instructions"]), rel  # no collisions inside a program
        for ix in idl["instructions"]:
            assert compiled.by_name[ix["name"]].discriminator == ref_discriminator(ix), (rel, ix["name"])


@pytest.mark.parametrize(("rel", "name"), CASES, ids=[f"{r}:{n}" for r, n in CASES])
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_instruction_round_trip(rel: str, name: str, data) -> None:
    idl, ref, compiled = _load(rel)
    ix = next(i for i in idl["instructions"] if i["name"] == name)
    args = data.draw(ref.args_strategy(ix), label="args")
    raw = ref.encode_ix(ix, args)
    got_ix, got_args = compiled.decode(raw)
    assert got_ix.name == name
    assert got_args == args
    assert compiled.encode(name, args) == raw
    flat = [a["name"] for a in _flatten(ix["accounts"])]
    assert list(got_ix.account_names) == flat


def _flatten(accounts: list, prefix: str = "") -> list[dict]:
    out = []
    for a in accounts:
        if "accounts" in a:
            out += _flatten(a["accounts"], prefix + a["name"] + ".")
        else:
            out.append({**a, "name": prefix + a["name"]})
    return out


def test_case_count_covers_every_instruction() -> None:
    by_dir = {}
    for rel, _ in CASES:
        by_dir[rel.split("/")[0]] = by_dir.get(rel.split("/")[0], 0) + 1
    # instruction counts of the stored IDL sets (reference/helium/idls)
    assert by_dir["anchor030"] == 159 and by_dir["helium-wallet-rs"] == 219
    assert by_dir["legacy"] == 127 and by_dir["legacy-pre-hip138"] == 112
