"""The streamed chain (long runs): same bytes and truth as the kept ledger, bounded retention, pacing."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest

from indexer.devchain.ledger import SimConfig, generate_ledger
from indexer.devchain.server import FINAL_LAG
from indexer.devchain.stream import LedgerStream, Window, stream_in_thread
from indexer.networks.watch import watched_addresses

CFG = dict(seed=13, slots_per_day=300, tx_per_slot=3, fork_rate=0.03, failed_rate=0.05, days=2)


def _rpc(url: str, method: str, *params):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    req = urllib.request.Request(url, body, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def _wait(url: str, pred, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        st = _rpc(url, "devchain_stream")["result"]
        if pred(st) or time.monotonic() > deadline:
            return st
        time.sleep(0.05)


@pytest.fixture(scope="module")
def kept():
    return generate_ledger(SimConfig(**CFG))


def test_stream_yields_the_kept_ledger_block_by_block(kept):
    stream = LedgerStream(SimConfig(**CFG))
    blocks = []
    while (b := stream.next_block()) is not None:
        blocks.append(b)
    assert [(b.slot, b.blockhash, b.forked) for b in blocks] == [(b.slot, b.blockhash, b.forked) for b in kept.blocks]
    assert [tx.wire for b in blocks for tx in b.transactions] == [tx.wire for tx in kept.transactions()]
    assert stream.events == len(kept.events)
    assert stream.truth.lines("all") == kept.truth_lines("all")
    assert stream.truth.lines("addresses") == kept.truth_lines("addresses")
    assert stream.truth.forked_events == sum(e["forked"] for e in kept.events) > 0
    assert stream.truth.events["addresses"] == sum(
        1 for e in kept.events if not e["forked"] and kept.discoverable(e["signature"]))


def test_stream_stops_after_max_events():
    stream = LedgerStream(SimConfig(**CFG), max_events=500)
    while stream.next_block() is not None:
        pass
    assert 500 <= stream.events < 500 + 200          # stops at the first block boundary past the bound
    assert stream.exhausted and stream.next_block() is None
    by_addresses = LedgerStream(SimConfig(**CFG), max_events=500, count="addresses")
    while by_addresses.next_block() is not None:
        pass
    assert 500 <= by_addresses.truth.events["addresses"] < 700 and by_addresses.events > stream.events


def test_window_keeps_absolute_positions():
    w = Window(-1, [10, 11, 12, 13])
    assert w.drop_before(2) == [10, 11]
    assert len(w) == 4 and w[1] == -1 and w[2] == 12 and w[-1] == 13
    w.append(14)
    assert w[4] == 14 and list(w) == [12, 13, 14]
    import bisect

    assert bisect.bisect_left(w, 13) == 3


def test_served_stream_forgets_old_blocks_and_keeps_the_truth(kept):
    retention = 4 * FINAL_LAG
    stream = LedgerStream(SimConfig(**CFG))
    with stream_in_thread(stream, max_ahead=None, retention_blocks=retention, prune_every=20) as node:
        st = _wait(node.url, lambda s: s["finished"])
        server = node.server
        assert st["finished"] and st["blocks"] == len(kept.blocks) and st["transactions"] == kept.tx_count()
        assert st["retained_blocks"] <= retention + 20 + FINAL_LAG and st["pruned_blocks"] > 0
        assert _rpc(node.url, "devchain_truth", "addresses")["result"] == kept.truth_lines("addresses")
        assert _rpc(node.url, "devchain_truth", "all")["result"] == kept.truth_lines("all")

        kept_sigs = {tx.signature for b in server.blocks for tx in b.transactions}
        assert set(server.sig_seq) == kept_sigs          # indexes hold only what is retained
        first_seq = server.blocks.base and server.tx_pos.base
        assert all(seqs and seqs[0] >= first_seq for seqs in server.by_address.values())

        old = kept.blocks[0]
        err = _rpc(node.url, "getBlock", old.slot, {"maxSupportedTransactionVersion": 0})["error"]
        assert err["code"] == -32009
        old_sig = old.transactions[0].signature
        assert _rpc(node.url, "getTransaction", old_sig, {"maxSupportedTransactionVersion": 0})["result"] is None
        new = next(b for b in reversed(kept.blocks) if not b.forked and b.transactions)
        got = _rpc(node.url, "getTransaction", new.transactions[0].signature,
                   {"maxSupportedTransactionVersion": 0, "encoding": "base64"})["result"]
        assert got["slot"] == new.slot
        assert _rpc(node.url, "getSlot", {"commitment": "finalized"})["result"] == kept.blocks[-1].slot \
            or kept.blocks[-1].forked
        watched = [a for addrs in watched_addresses().values() for a in addrs]
        helium = max(watched, key=lambda a: len(server.by_address.get(a, ())))
        listed = _rpc(node.url, "getSignaturesForAddress", helium, {"limit": 1000})["result"]
        canonical = [q for q in server.by_address[helium] if not server.blocks[server.tx_loc[q][0]].forked]
        assert len(listed) == min(1000, len(canonical)) > 0        # forked ones vanished at finalized
        assert {x["signature"] for x in listed} <= kept_sigs
        assert _rpc(node.url, "minimumLedgerSlot")["result"] == server.blocks[server.blocks.base].slot


def test_pacing_waits_for_the_client():
    stream = LedgerStream(SimConfig(**CFG))
    with stream_in_thread(stream, max_ahead=10, retention_blocks=200) as node:
        st = _wait(node.url, lambda s: s["blocks"] >= 10, timeout=30)
        time.sleep(0.5)
        st = _rpc(node.url, "devchain_stream")["result"]
        assert st["blocks"] <= 12 and not st["finished"]        # nobody fetched: the chain waits
        server = node.server
        pos = server.limit("confirmed") - 1
        tx = server.blocks[pos].transactions[0]
        _rpc(node.url, "getTransaction", tx.signature, {"maxSupportedTransactionVersion": 0, "commitment": "confirmed"})
        st = _wait(node.url, lambda s: s["blocks"] >= pos + 10, timeout=30)
        assert st["blocks"] >= pos + 10                           # a fetch lets it move on


def test_pace_holds_the_chain_near_the_clients_done_slot():
    stream = LedgerStream(SimConfig(**CFG))
    with stream_in_thread(stream, max_ahead=None, retention_blocks=500) as node:
        first = node.server.blocks[0].slot
        assert _rpc(node.url, "devchain_pace", first)["result"] == 0
        # the chain runs free until that first call; under load it may already be past the pace window
        before = _rpc(node.url, "devchain_stream")["result"]["blocks"]
        time.sleep(0.5)
        st = _rpc(node.url, "devchain_stream")["result"]
        if before <= FINAL_LAG:
            assert st["blocks"] <= FINAL_LAG + 2 and st["unpaced_blocks"] == FINAL_LAG  # waits for the client
        else:
            assert st["blocks"] <= before + 1                   # past the window already: nothing new
        k = max(20, st["blocks"] - 1)                          # a block that exists, the window moves on from it
        _rpc(node.url, "devchain_pace", node.server.blocks[k].slot)
        st = _wait(node.url, lambda s: s["blocks"] >= k + FINAL_LAG, timeout=30)
        time.sleep(0.3)
        st = _rpc(node.url, "devchain_stream")["result"]
        assert k + FINAL_LAG <= st["blocks"] <= k + FINAL_LAG + 2
        assert _rpc(node.url, "devchain_stop")["result"] is True
        _rpc(node.url, "devchain_pace", node.server.blocks[-1].slot)
        assert _wait(node.url, lambda s: s["finished"], timeout=30)["finished"]


def test_kept_event_ids_name_every_event_of_each_addresses_line(kept):
    """The mismatch diagnostic (issue 9): the ids behind a truth line are exactly the kept ledger's
    canonical, discoverable events of that line, and their amounts add up to the line."""
    stream = LedgerStream(SimConfig(**CFG), keep_ids=True)
    while stream.next_block() is not None:
        pass
    keys = ("network", "day", "flow_class", "subtype", "mint")
    for line in stream.truth.lines("addresses"):
        key = tuple(line[k] for k in keys)
        ids = stream.truth.line_ids(key)
        expected = sorted(e["event_id"] for e in kept.events
                          if not e["forked"] and kept.discoverable(e["signature"])
                          and tuple(e[k] for k in keys) == key)
        assert sorted(x["event_id"] for x in ids) == expected
        assert sum(x["amount_raw"] for x in ids) == line["amount_raw"]
    with pytest.raises(ValueError):
        LedgerStream(SimConfig(**CFG)).truth.line_ids(("helium",))
