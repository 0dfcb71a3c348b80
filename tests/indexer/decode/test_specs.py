"""The project's program specs (schemas/programs) against the reference facts they were written from."""

from __future__ import annotations

import ast
import csv
import hashlib
import re

import pytest

from indexer.decode.eras import BOUNDARIES
from indexer.decode.registry import SPEC_DIR, default_registry, load_specs
from tests.refdata import reference_path

# Listed in programs.md but deliberately absent from the specs (no args/accounts published; see README).
NOT_SPECIFIED = {("hdaoVTCqhfHHo75XdAMxBKdUqvq1i5bF23sisBqVgGR", "change_delegation_v0")}


def _programs_md_rows() -> list[tuple[str, str, str]]:
    """(program id, instruction, disc hex) of every value-relevant instruction table in programs.md."""
    text = reference_path("helium/programs.md").read_text()
    rows = []
    program_id = None
    for line in text.splitlines():
        m = re.match(r"### \S+ — `(\w+)`", line)
        if m:
            program_id = m.group(1)
            continue
        if line.startswith("## ") and program_id:
            program_id = None if "Value-relevant" not in line else program_id
        m = re.match(r"\| `(\w+)` \| `([0-9a-f]{16})` \|", line)
        if m and program_id:
            rows.append((program_id, m.group(1), m.group(2)))
    return rows


ROWS = _programs_md_rows()


def test_programs_md_parsed() -> None:
    assert len(ROWS) >= 60
    assert ("circAbx64bbsscPbQzZAUvuXpHqrCe6fLMzc2uKXz9g", "burn_v0", "adf6f0eae5b2f939") in ROWS


@pytest.mark.parametrize(("program_id", "name", "disc"), ROWS, ids=[f"{r[1]}@{r[0][:6]}" for r in ROWS])
def test_every_value_instruction_is_specified(program_id: str, name: str, disc: str) -> None:
    assert hashlib.sha256(f"global:{name}".encode()).digest()[:8].hex() == disc
    if (program_id, name) in NOT_SPECIFIED:
        return
    reg = default_registry()
    ix = reg.instruction(program_id, bytes.fromhex(disc))
    assert ix.name == name


def test_historic_emission_instruction_decodes() -> None:
    reg = default_registry()
    hsd = "hdaoVTCqhfHHo75XdAMxBKdUqvq1i5bF23sisBqVgGR"
    data = bytes.fromhex("fa1388d0e55e88da") + (20000).to_bytes(8, "little")
    d = reg.decode(hsd, data, [f"{i}" * 1 for i in range(8)], BOUNDARIES["hip138"].slot - 100)
    assert (d.name, d.args) == ("issue_hst_pool_v0", {"args": {"epoch": 20000}})
    assert list(d.accounts)[:5] == ["dao", "dao_epoch_info", "hnt_circuit_breaker", "hnt_mint", "hst_pool"]


def test_spec_discriminators_match_names_and_csv() -> None:
    csv_rows = list(csv.DictReader(reference_path("helium/discriminators.csv").open()))
    known = {(r["program_id"], r["name"]): r["discriminator_hex"] for r in csv_rows if r["kind"] == "instruction"}
    checked = 0
    for spec in load_specs():
        layers = [spec["instructions"]] + [e["instructions"] for e in spec["eras"]]
        for ixs in layers:
            for ix in ixs:
                assert ix["discriminator"] == hashlib.sha256(f"global:{ix['name']}".encode()).digest()[:8].hex()
                if (spec["address"], ix["name"]) in known:
                    assert known[(spec["address"], ix["name"])] == ix["discriminator"]
                    checked += 1
    assert checked >= 150


def _layout_history() -> dict[str, list[tuple[str, list[str]]]]:
    out: dict[str, list] = {}
    current = None
    for line in reference_path("helium/layout_history.txt").read_text().splitlines():
        m = re.match(r"== \S+ (\w+)", line)
        if m:
            current = m.group(1)
            out[current] = []
            continue
        m = re.match(r"\s+(\d{4}-\d\d-\d\d) \w+: (\[.*\])", line)
        if m and current:
            out[current].append((m.group(1), ast.literal_eval(m.group(2))))
    return out


def test_issue_rewards_eras_match_layout_history() -> None:
    hist = dict(_layout_history()["IssueRewardsV0"])
    reg = default_registry()
    hsd = "hdaoVTCqhfHHo75XdAMxBKdUqvq1i5bF23sisBqVgGR"
    pre = reg.account_names(hsd, "issue_rewards_v0", BOUNDARIES["hip138"].slot - 1)
    post = reg.account_names(hsd, "issue_rewards_v0", BOUNDARIES["hip138"].slot)
    head = reg.account_names(hsd, "issue_rewards_v0", BOUNDARIES["hip149"].slot)
    assert list(pre) == hist["2023-02-10"]
    assert list(post) == hist["2025-01-08"]
    assert list(head) == hist["2026-07-17"]
    assert reg.account_names(hsd, "issue_rewards_v0") == head


def test_calculate_utility_score_eras_match_layout_history() -> None:
    hist = dict(_layout_history()["CalculateUtilityScoreV0"])
    reg = default_registry()
    hsd = "hdaoVTCqhfHHo75XdAMxBKdUqvq1i5bF23sisBqVgGR"
    old = reg.account_names(hsd, "calculate_utility_score_v0", BOUNDARIES["hsd_0_1_0"].slot - 1)
    assert list(old) == hist["2023-01-17"]
    assert list(reg.account_names(hsd, "calculate_utility_score_v0")) == hist["2026-07-17"]


def test_onboarding_and_boost_eras_match_layout_history() -> None:
    hist = _layout_history()
    reg = default_registry()
    hem = "hemjuPXBpNvggtaUnN1MwT3wrdhttKEfosTcc2P9Pg8"
    before = reg.account_names(hem, "onboard_mobile_hotspot_v0", BOUNDARIES["hip96_mobile_onboarding"].slot - 1)
    after = reg.account_names(hem, "onboard_mobile_hotspot_v0")
    assert list(before) == dict(hist["OnboardMobileHotspotV0"])["2023-08-01"]
    assert list(after) == dict(hist["OnboardMobileHotspotV0"])["2023-12-19"]
    hexb = "hexbnKYoA2GercNNhHUCCfrTRWrHjT6ujKPXTa5NPqJ"
    assert list(reg.account_names(hexb, "boost_v0", BOUNDARIES["hexboost_dc"].slot - 1)) == \
        dict(hist["BoostV0"])["2024-01-10"]
    assert list(reg.account_names(hexb, "boost_v0")) == dict(hist["BoostV0"])["2025-02-11"]


def test_readme_boundary_table_matches_code() -> None:
    text = (SPEC_DIR / "README.md").read_text()
    for b in BOUNDARIES.values():
        assert f"| {b.name} | {b.utc[:10]} | {b.slot:,} |" in text, b.name


def test_specs_are_self_contained() -> None:
    for spec in load_specs():
        assert spec["spec"] == "depinflow-program-spec/1"
        names = [ix["name"] for ix in spec["instructions"]]
        assert len(names) == len(set(names)), spec["name"]
        for era in spec["eras"]:
            assert era["until_slot"] is None or era["until_slot"] > era["from_slot"]
