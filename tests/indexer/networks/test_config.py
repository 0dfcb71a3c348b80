"""Network label data: shipped files, user extensions, the listener's watch list."""

from __future__ import annotations

import orjson
import pytest

from indexer.networks.config import anchor_discriminator, load_config, merge
from indexer.networks.watch import WATCHED_ADDRESSES, watched_addresses


def test_anchor_discriminator_matches_published_values():
    assert anchor_discriminator("issue_rewards_v0").hex() == "a6ce1d9d4990a429"
    assert anchor_discriminator("burn_without_tracking_v0").hex() == "816a2b04348f66d0"
    assert anchor_discriminator("initialize").hex() == "afaf6d1f0d989bed"


def test_shipped_config_facts():
    cfg = load_config()
    h = cfg.helium
    assert h.programs["credMBJhYFzfn7NxBMdU4aUqFggAjgztaCcv2Fo6fPT"] == "data_credits"
    assert {(i.symbol, i.decimals) for i in h.mints.values()} == {("HNT", 8), ("IOT", 6), ("MOBILE", 6), ("DC", 0)}
    assert h.mobile_topup_raw == 1_223_628_691_983 and str(h.dc_usd) == "0.00001"
    assert cfg.render.mint.decimals == 8
    assert "GqE7wcwRw86xxMz4pNq5cV3BkM64h3bvajQRQbigYqTX" in cfg.render.burn_accounts
    assert len(cfg.render.correction_signatures) == 15


def test_merge_appends_lists_merges_objects_replaces_scalars():
    base = {"a": [1, {"x": 1}], "b": {"c": 1, "d": 2}, "e": 1}
    assert merge(base, {"a": [{"x": 1}, 3], "b": {"d": 5}, "e": 9}) == {
        "a": [1, {"x": 1}, 3], "b": {"c": 1, "d": 5}, "e": 9}


def test_user_file_extends_helium_and_render(tmp_path):
    extra = tmp_path / "mine.json"
    extra.write_bytes(orjson.dumps([
        {"network": "helium", "emission_destinations": {"11111111111111111111111111111112": "treasury"}},
        {"network": "render", "correction_signatures": [{"signature": "abc"}],
         "wormhole_programs": {"my_bridge": "Bridge1111111111111111111111111111111111111"}},
    ]))
    cfg = load_config([extra])
    assert cfg.helium.emission_destinations["11111111111111111111111111111112"] == "treasury"
    assert "BDs6RPnpJNzmuMNv1z8cDh9cxKFgCxEVDaCfoHZWyvqJ" in cfg.helium.emission_destinations  # kept
    assert "abc" in cfg.render.correction_signatures and len(cfg.render.correction_signatures) == 16
    assert cfg.render.wormhole_programs["Bridge1111111111111111111111111111111111111"] == "my_bridge"


def test_user_file_must_name_a_known_network(tmp_path):
    extra = tmp_path / "x.json"
    extra.write_bytes(orjson.dumps({"network": "filecoin"}))
    with pytest.raises(ValueError, match="network"):
        load_config([extra])


def test_watch_list_has_programs_mint_and_burn_account():
    assert "hdaoVTCqhfHHo75XdAMxBKdUqvq1i5bF23sisBqVgGR" in WATCHED_ADDRESSES["helium"]
    assert "circAbx64bbsscPbQzZAUvuXpHqrCe6fLMzc2uKXz9g" in WATCHED_ADDRESSES["helium"]
    assert WATCHED_ADDRESSES["render"] == ("GqE7wcwRw86xxMz4pNq5cV3BkM64h3bvajQRQbigYqTX",
                                           "rndrizKT3MK1iimdxRdWabcF7Zg7AR5T4nud4EkHBof")
    assert watched_addresses() == WATCHED_ADDRESSES
