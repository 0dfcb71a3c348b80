"""The decode-ix / decode-tx commands, run through the real dispatcher in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

from indexer.decode.canonical import dumps
from tests.refdata import reference_path

IDL = str(reference_path("helium/idls/anchor030/helium_sub_daos.json"))
LEGACY = str(reference_path("helium/idls/legacy/data_credits.json"))


def _run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.cli.main", *args], input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_decode_ix_single() -> None:
    p = _run("decode-ix", "--idl", IDL, "--data", "a6ce1d9d4990a429" + (20542).to_bytes(8, "little").hex())
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == {"instruction": "issue_rewards_v0", "args": {"args": {"epoch": 20542}}}


def test_decode_ix_error_and_batch() -> None:
    p = _run("decode-ix", "--idl", IDL, "--data", "a6ce1d9d4990a429ff")
    assert p.returncode == 1 and json.loads(p.stdout)["error"].startswith("short_data")
    lines = [
        {"idl": LEGACY, "data_hex": "4e6da984905edd39" + "01" + (10**8).to_bytes(8, "little").hex() + "00"},
        {"idl": IDL, "data_hex": "00" * 8},
        {"idl": IDL, "data_hex": "zz"},
        {"idl": "/nonexistent.json", "data_hex": "00"},
    ]
    p = _run("decode-ix", "--batch", stdin="\n".join(json.dumps(x) for x in lines) + "\n")
    assert p.returncode == 0, p.stderr
    out = [json.loads(x) for x in p.stdout.splitlines()]
    assert out[0] == {"instruction": "mintDataCreditsV0", "args": {"args": {"hntAmount": 10**8, "dcAmount": None}}}
    assert out[1]["error"].startswith("unknown_discriminator")
    assert out[2]["error"].startswith("bad_hex") and out[3]["error"].startswith("bad_idl")


def test_decode_tx_fixture() -> None:
    p = _run("decode-tx", str(reference_path("helium/fixtures/hsd_claim_rewards.json")))
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert [r["path"] for r in rows] == ["0", "1", "2", "2.1", "2.1.1", "2.1.1.1", "3", "3.1", "3.1.1", "3.1.1.1"]
    burn = rows[4]
    assert (burn["program"], burn["instruction"], burn["args"]) == ("circuit_breaker", "burn_v0",
                                                                    {"args": {"amount": 787}})
    assert burn["accounts"]["from"] == "A7AjQhocZZvQXQJ5ducRF7gkconjNZfMNCjKguShoe8G"
    assert rows[5]["instruction"] == "burn" and rows[5]["args"] == {"amount": 787}
    assert rows[0]["reason"] == "unknown_program" and rows[0]["data_hex"]


def test_canonical_rendering() -> None:
    value = {"big": 2**128 - 1, "neg": -(2**127), "b": b"\x00\xab", "n": None, "e": {"V": [1, b"\x01"]}}
    assert dumps(value) == '{"big":340282366920938463463374607431768211455,"neg":' \
        '-170141183460469231731687303715884105728,"b":"00ab","n":null,"e":{"V":[1,"01"]}}'
    assert dumps({"x": 2**64 - 1, "h": b"\xff"}) == '{"x":18446744073709551615,"h":"ff"}'
