"""`depinflow report`: the numbers equal the known inserted data (deduplicated, retractions excluded),
the three answers, the formats, --totals, and reading through the running service's endpoint."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest

from pipelines.cli.main import main
from pipelines.query import start_query_endpoint
from pipelines.report.analysis import analyse
from pipelines.report.data import load_invoice
from tests.pipelines.report.conftest import DAYS, MINTS


def report(capsys, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()  # drop what fixtures printed (migration logs)
    rc = main(["report", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_report_numbers_equal_the_inserted_data(ch_client, scenario):
    data = load_invoice(ch_client, scenario.database, ("helium", "render"), days=7)
    assert (data.first_day, data.last_day) == (date(2026, 2, 25), date(2026, 3, 3))

    helium = analyse("helium", data.for_network("helium"))
    assert [f.row.day for f in helium.days] == [date.fromisoformat(d) for d in DAYS]
    assert [f.row.usage_usd for f in helium.days] == [Decimal(50), Decimal(20), Decimal(30)]
    assert helium.days[0].row.usage_usd_by_subtype == {"data_transfer": Decimal(10), "onboarding": Decimal(40)}
    assert [f.row.emission_tokens for f in helium.days] == [{"HNT": Decimal(110)}] * 3
    assert helium.days[0].row.emission_tokens_by_destination == {
        "rewards_escrow": {"HNT": Decimal(100)}, "delegator_pool": {"HNT": Decimal(10)}}
    # d1, d2 priced from the loaded HNT price; d3 has none -> the oracle price of its purchases ($10 / 2 HNT)
    assert [(f.emission_usd, f.emission_usd_source) for f in helium.days] == [
        (Decimal(550), "prices"), (Decimal(550), "prices"), (Decimal(550), "oracle")]
    assert helium.days[2].row.oracle_hnt_usd == Decimal(5)
    assert helium.days[0].row.purchase_tokens == {"HNT": Decimal(2), "DC": Decimal(1_000_000)}
    assert helium.days[1].row.reversal_tokens == {"HNT": Decimal(1)}
    assert helium.days[1].row.reversal_usd == Decimal(5)
    assert [f.ratio for f in helium.days] == pytest.approx([50 / 550, 20 / 550, 30 / 550])
    assert helium.basis == "usd_oracle"
    assert helium.usage_usd == Decimal(100)
    assert helium.usage_usd_by_subtype == {"data_transfer": Decimal(60), "onboarding": Decimal(40)}
    assert helium.emission_usd == Decimal(1650)
    assert helium.ratio == pytest.approx(100 / 1650)

    render = analyse("render", data.for_network("render"))
    assert [f.row.usage_tokens for f in render.days] == [{"RENDER": Decimal(50)}, {"RENDER": Decimal("80.5")}]
    # the retracted 5,000,000 RENDER mint (forked block) and the duplicates do not count
    assert [f.row.emission_tokens for f in render.days] == [{"RENDER": Decimal(1000)}] * 2
    assert render.basis == "tokens"
    assert [f.ratio for f in render.days] == pytest.approx([0.05, 0.0805])
    assert render.ratio == pytest.approx(130.5 / 2000)
    assert render.missing_prices == ["RENDER"]


def test_the_three_answers(ch_client, scenario):
    data = load_invoice(ch_client, scenario.database, ("helium", "render"), days=7)
    helium = analyse("helium", data.for_network("helium")).answers
    assert helium["who_pays"] == ("Buyers of the service paid $100.00 in usage fees over 3 day(s) by burning "
                                  "10,000,000 DC (data_transfer 60%, onboarding 40%).")
    assert helium["what_funds_rewards"] == (
        "Newly minted tokens: 330.00 HNT ($1,650) to rewards_escrow 91%, delegator_pool 9%, less 1.00 HNT "
        "burned back; usage fees cover 6.06% of that, so issuance (dilution) funds 93.9% of the rewards.")
    assert helium["ratio_trend"] == "Falling: from 9.09% to 5.45% over 2026-03-01..2026-03-03 (first vs last 1 day(s))."
    render = analyse("render", data.for_network("render")).answers
    assert render["who_pays"] == ("Buyers of the service burned 130.50 RENDER in usage fees over 2 day(s) "
                                  "(bme_burn); no USD price loaded for RENDER.")
    assert render["ratio_trend"] == "Rising: from 5.00% to 8.05% over 2026-03-01..2026-03-02 (first vs last 1 day(s))."


def test_json_format_is_exact(capsys, ch_dsn, scenario):
    rc, out, err = report(capsys, "--dsn", ch_dsn, "--database", scenario.database, "--format", "json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["period"] == {"first_day": "2026-02-25", "last_day": "2026-03-03"}
    helium = doc["networks"]["helium"]
    assert [d["usage_usd"] for d in helium["days"]] == ["50", "20", "30"]
    assert [d["emission_usd"] for d in helium["days"]] == ["550", "550", "550"]
    assert [d["emission_usd_source"] for d in helium["days"]] == ["prices", "prices", "oracle"]
    assert helium["days"][0]["purchase_tokens"] == {"DC": "1000000", "HNT": "2"}
    assert helium["totals"]["usage_usd_by_subtype"] == {"data_transfer": "60", "onboarding": "40"}
    assert helium["totals"]["emission_tokens_by_destination"] == {"delegator_pool": {"HNT": "30"},
                                                                  "rewards_escrow": {"HNT": "300"}}
    assert helium["totals"]["ratio_basis"] == "usd_oracle"
    assert doc["networks"]["render"]["totals"]["usage_tokens"] == {"RENDER": "130.5"}
    assert set(helium["answers"]) == {"who_pays", "what_funds_rewards", "ratio_trend"}


def test_csv_format_one_row_per_network_day(capsys, ch_dsn, scenario):
    rc, out, err = report(capsys, "--dsn", ch_dsn, "--database", scenario.database, "--format", "csv",
                          "--network", "helium", "--days", "2")
    assert rc == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["network"], r["day"]) for r in rows] == [("helium", "2026-03-02"), ("helium", "2026-03-03")]
    assert [r["usage_usd"] for r in rows] == ["20", "30"]
    assert [r["usage_usd_data_transfer"] for r in rows] == ["20", "30"]
    assert [r["emission_HNT"] for r in rows] == ["110", "110"]
    assert [r["reversal_HNT"] for r in rows] == ["1", ""]
    assert float(rows[0]["ratio"]) == pytest.approx(20 / 550)
    assert "helium who_pays: Buyers of the service paid $50.00" in err  # answers go to stderr with CSV


def test_table_format_shows_days_totals_and_answers(capsys, ch_dsn, scenario):
    rc, out, err = report(capsys, "--dsn", ch_dsn, "--database", scenario.database)
    assert rc == 0, err
    assert "2026-02-25 .. 2026-03-03 (7 days, 3 with data)" in out
    assert "== HELIUM ==" in out and "== RENDER ==" in out
    lines = out.splitlines()
    d1 = next(ln for ln in lines if ln.strip().startswith("2026-03-01") and "DC" in ln)
    assert d1.split()[:6] == ["2026-03-01", "5,000,000", "DC", "$50.00", "110.00", "HNT"]
    assert d1.rstrip().endswith("9.09%")
    assert any(ln.strip().startswith("total") and "$1,650" in ln and "6.06%" in ln for ln in lines)
    assert "usage by subtype: data_transfer $60.00, onboarding $40.00" in out
    assert "Who pays? Buyers of the service paid $100.00" in out
    assert "What funds the rewards? Newly minted tokens: 330.00 HNT" in out
    assert "How is the ratio trending? Falling" in out
    assert "* HNT valued at the oracle price" in out


def test_totals_are_the_deduplicated_truth_lines(capsys, ch_dsn, scenario):
    rc, out, err = report(capsys, "--dsn", ch_dsn, "--database", scenario.database, "--totals")
    assert rc == 0, err
    expected: dict[tuple, int] = {}
    for e in scenario.events:
        key = (e.network, e.day, e.flow_class, e.subtype, e.mint)
        expected[key] = expected.get(key, 0) + e.amount_raw
    lines = [json.dumps({"network": k[0], "day": k[1], "flow_class": k[2], "subtype": k[3], "mint": k[4],
                         "amount_raw": v}) for k, v in sorted(expected.items())]
    assert out == "\n".join(lines) + "\n"
    rc, out, _ = report(capsys, "--dsn", ch_dsn, "--database", scenario.database, "--totals",
                        "--network", "render", "--days", "1")
    assert [json.loads(x) for x in out.splitlines()] == [
        {"network": "render", "day": "2026-03-02", "flow_class": "emission", "subtype": "mint",
         "mint": MINTS["RENDER"][0], "amount_raw": 1000 * 10**8},
        {"network": "render", "day": "2026-03-02", "flow_class": "usage_fee", "subtype": "bme_burn",
         "mint": MINTS["RENDER"][0], "amount_raw": 8050 * 10**6}]


def test_report_reads_through_the_running_service(capsys, ch_client, ch_dsn, scenario, tmp_path):
    rc, direct, _ = report(capsys, "--dsn", ch_dsn, "--database", scenario.database, "--format", "json")
    _, totals_direct, _ = report(capsys, "--dsn", ch_dsn, "--database", scenario.database, "--totals")
    with start_query_endpoint(ch_client, data_dir=tmp_path) as ep:
        rc2, served, err = report(capsys, "--data-dir", str(tmp_path), "--database", scenario.database,
                                  "--format", "json")
        rc3, totals_served, _ = report(capsys, "--data-dir", str(tmp_path), "--database", scenario.database,
                                       "--totals")
    assert (rc, rc2, rc3) == (0, 0, 0)
    assert f"query endpoint at {ep.url}" in err
    assert json.loads(served) == json.loads(direct)
    assert totals_served == totals_direct and len(totals_served.splitlines()) == 22


def test_empty_database_and_missing_views(capsys, ch_dsn, migrated_db, ch_database):
    rc, out, err = report(capsys, "--dsn", ch_dsn, "--database", migrated_db)
    assert rc == 0, err
    assert "no data" in out and "no events in this period" in out
    rc, out, err = report(capsys, "--dsn", ch_dsn, "--database", "no_such_db_xyz")
    assert rc == 1
    assert "has no invoice views yet" in err


def test_missing_data_directory_is_a_clear_error(capsys, tmp_path):
    rc, _, err = report(capsys, "--data-dir", str(tmp_path / "nothing"))
    assert rc == 1 and "no ClickHouse data" in err


def test_chart_is_a_readable_png(capsys, ch_dsn, scenario, tmp_path):
    import struct

    from matplotlib.image import imread

    target = tmp_path / "charts" / "invoice.png"
    rc, _, err = report(capsys, "--dsn", ch_dsn, "--database", scenario.database, "--chart", str(target))
    assert rc == 0 and f"chart written to {target}" in err
    raw = target.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n" and raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    assert width >= 1000 and height >= 800  # two network panels
    pixels = imread(target)[..., :3]
    usage_green = (pixels[..., 0] < 0.15) & (pixels[..., 1] > 0.4) & (pixels[..., 1] < 0.55) & (pixels[..., 2] < 0.3)
    assert usage_green.sum() > 500  # the usage bars are drawn
    assert pixels.std() > 0.1  # not a blank canvas
