"""`depinflow flows FILE`: one transaction in, its v1 flow events out (the audit command)."""

from __future__ import annotations

from pathlib import Path

import orjson
from jsonschema import Draft202012Validator

from pipelines.cli.main import main
from tests.refdata import reference_path

REPO = Path(__file__).resolve().parents[3]
FLOW = Draft202012Validator(orjson.loads((REPO / "schemas/events/v1/flow_event.json").read_bytes()))
CLAIM = reference_path("helium/fixtures/hsd_claim_rewards.json")


def lines(capsys) -> list[dict]:
    return [orjson.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_prints_the_fixture_flows_as_schema_valid_json_lines(capsys):
    assert main(["flows", str(CLAIM)]) == 0
    rows = lines(capsys)
    assert [(r["flow_class"], r["subtype"], r["amount_raw"], r["epoch"]) for r in rows] == [
        ("reversal", "non_voter_burn", 787, 20542), ("reversal", "non_voter_burn", 79_944, 20542)]
    for r in rows:
        FLOW.validate(r)


def test_accepts_a_full_rpc_response_on_stdin_and_prices(tmp_path, capsys, monkeypatch):
    import io
    import sys

    result = orjson.loads(CLAIM.read_bytes())
    response = orjson.dumps({"jsonrpc": "2.0", "id": 1, "result": result})
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(response)))
    prices = tmp_path / "prices.csv"
    prices.write_text("token,day,usd\nHNT,2026-03-31,2.5\n")
    assert main(["flows", "-", "--prices", str(prices), "--commitment", "finalized"]) == 0
    rows = lines(capsys)
    assert [(r["usd"], r["usd_price"], r["commitment"]) for r in rows] == [
        ("0.000019675", "2.5", "finalized"), ("0.0019986", "2.5", "finalized")]


def test_instruction_and_dead_letter_streams(tmp_path, capsys):
    assert main(["flows", "--kind", "instructions", str(CLAIM)]) == 0
    assert [r["instruction"] for r in lines(capsys)] == ["claim_rewards_v1", "burn_v0"] * 2
    assert main(["flows", "--kind", "dead-letters", str(CLAIM)]) == 0
    assert lines(capsys) == []


def test_bad_input_is_reported_not_crashed(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"jsonrpc": "2.0", "id": 1, "result": null}')
    assert main(["flows", str(bad)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "null result" in captured.err
    bad.write_text("not json")
    assert main(["flows", str(bad)]) == 2
