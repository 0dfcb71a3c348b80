"""The report against the chain simulator's ground truth: what the simulator knows it generated
(through the sink's rows and writer, duplicates and forked-block retractions included) is exactly
what `report --totals` prints and what the invoice adds up to."""

from __future__ import annotations

import json
from collections import defaultdict
from decimal import Decimal

from indexer.networks.config import default_config
from pipelines.cli.main import main
from tests.pipelines.report.conftest import write_events
from tests.pipelines.sink.helpers import flow_events, ledger


def test_report_equals_the_simulator_ground_truth(capsys, ch_client, ch_dsn, migrated_db):
    led = ledger()
    events = flow_events(led)
    write_events(ch_client, migrated_db, [e for e, forked in events if not forked],
                 [e for e, forked in events if forked])
    truth = led.truth_lines()
    assert any(e for e, forked in events if forked)  # the ledger does exercise retractions

    capsys.readouterr()
    assert main(["report", "--dsn", ch_dsn, "--database", migrated_db, "--totals"]) == 0
    assert capsys.readouterr().out == "".join(json.dumps(line) + "\n" for line in truth)

    assert main(["report", "--dsn", ch_dsn, "--database", migrated_db, "--format", "json", "--days", "30"]) == 0
    doc = json.loads(capsys.readouterr().out)
    cfg = default_config()
    expected: dict[tuple, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for line in truth:
        info = cfg.symbol_of(line["mint"])
        amount = Decimal(line["amount_raw"]).scaleb(-info.decimals)
        expected[(line["network"], line["day"], line["flow_class"])][info.symbol] += amount
    columns = {"usage_fee": "usage_tokens", "emission": "emission_tokens", "purchase": "purchase_tokens",
               "reversal": "reversal_tokens"}
    checked = 0
    for network, body in doc["networks"].items():
        for day in body["days"]:
            for flow_class, column in columns.items():
                want = {k: v for k, v in expected[(network, day["day"], flow_class)].items() if v}
                assert {k: Decimal(v) for k, v in day[column].items()} == want, (network, day["day"], flow_class)
                checked += bool(want)
            usage_dc = expected[(network, day["day"], "usage_fee")].get("DC")
            if usage_dc is not None:  # Helium usage is priced by the DC peg alone
                assert Decimal(day["usage_usd"]) == usage_dc * Decimal("0.00001")
    assert checked >= 6
    days_in_truth = {(ln["network"], ln["day"]) for ln in truth if ln["flow_class"] in columns}
    assert {(n, d["day"]) for n, b in doc["networks"].items() for d in b["days"]} == days_in_truth
