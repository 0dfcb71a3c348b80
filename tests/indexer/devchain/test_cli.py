"""`depinflow devchain truth|serve` from the command line."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from indexer.devchain.ledger import SimConfig, generate_ledger
from pipelines.cli.main import main

REPO = Path(__file__).resolve().parents[3]


def test_truth_prints_sorted_lines_equal_to_the_ledger(capsys):
    assert main(["devchain", "truth", "--seed", "4", "--days", "1", "--slots-per-day", "200"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    ledger = generate_ledger(SimConfig(seed=4, days=1, slots_per_day=200))
    assert lines == ledger.truth_lines(discovery="addresses")
    assert all(list(x) == ["network", "day", "flow_class", "subtype", "mint", "amount_raw"] for x in lines)


def test_truth_discovery_all_adds_only_undiscoverable_render_transfers(capsys):
    assert main(["devchain", "truth", "--seed", "4", "--days", "1", "--slots-per-day", "200",
                 "--discovery", "all"]) == 0
    every = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    ledger = generate_ledger(SimConfig(seed=4, days=1, slots_per_day=200))
    assert every == ledger.truth_lines()
    seen = {tuple(x[k] for k in ("network", "day", "flow_class", "subtype", "mint")): x["amount_raw"]
            for x in ledger.truth_lines(discovery="addresses")}
    differ = [x for x in every if seen.get(tuple(x[k] for k in ("network", "day", "flow_class", "subtype",
                                                                "mint"))) != x["amount_raw"]]
    # plain RENDER Transfers between two holders name neither the mint nor a watched account
    assert differ and {(x["network"], x["flow_class"], x["subtype"]) for x in differ} == {
        ("render", "transfer", "token_transfer")}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_json_rpc(tmp_path):
    port = _free_port()
    faults = tmp_path / "faults.json"
    faults.write_text(json.dumps({"seed": 1, "methods": {"getVersion": {"http_429": 1.0, "retry_after": 2}}}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipelines.cli.main", "devchain", "serve", "--port", str(port), "--slots-per-day",
         "100", "--faults", str(faults)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ},
    )
    try:
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner, banner
        import urllib.error
        import urllib.request

        def post(payload):
            req = urllib.request.Request(f"http://127.0.0.1:{port}", data=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        deadline = time.time() + 10
        while True:
            try:
                assert post({"jsonrpc": "2.0", "id": 1, "method": "getHealth"})["result"] == "ok"
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        try:
            post({"jsonrpc": "2.0", "id": 1, "method": "getVersion"})
            raise AssertionError("expected 429")
        except urllib.error.HTTPError as e:
            assert e.code == 429 and e.headers["Retry-After"] == "2"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
