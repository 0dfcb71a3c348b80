"""Helpers for the listener's end-to-end tests: the simulator's truth and what landed on Kafka."""

from __future__ import annotations

from collections import defaultdict

import orjson

from indexer.devchain import Ledger
from indexer.networks.watch import watched_addresses
from tests.kafkaread import read_topic

WATCHED = frozenset(a for addrs in watched_addresses().values() for a in addrs)


def listable(ledger: Ledger, signature: str) -> bool:
    """Can getSignaturesForAddress of a watched address find this transaction?

    Address-based listening sees a transaction only when a watched program, mint or account is in its
    account keys. Plain SPL `Transfer`s of RENDER between two holders name neither the mint nor a
    watched account, so they are invisible to it (see the report / README of the listener)."""
    block, i = ledger.tx_index[signature]
    return not WATCHED.isdisjoint(block.transactions[i].account_keys)


def expected(ledger: Ledger, *, include_forked: bool = False, min_slot: int | None = None,
             mode: str = "addresses") -> dict[str, dict]:
    """event_id -> expected event (in address mode: only the events address listening can find)."""
    out = {}
    for ev in ledger.expected_events():
        if ev["forked"] and not include_forked:
            continue
        if min_slot is not None and ev["slot"] < min_slot:
            continue
        if mode == "blocks" or listable(ledger, ev["signature"]):
            out[ev["event_id"]] = ev
    return out


def totals(events) -> dict[tuple, int]:
    sums: dict[tuple, int] = defaultdict(int)
    for e in events:
        sums[(e["network"], e["day"], e["flow_class"], e["subtype"], e["mint"])] += int(e["amount_raw"])
    return dict(sums)


def consume(bootstrap: str, topic: str) -> list:
    """Every message of `topic` from the beginning, up to the partitions' high watermarks."""
    return read_topic(bootstrap, topic)


def values(messages) -> list[dict]:
    return [orjson.loads(m.value) for m in messages]


def final_flows(bootstrap: str, prefix: str) -> tuple[dict[str, dict], dict[str, str], int]:
    """(event_id -> latest flow event, signature -> last status, raw flow message count)."""
    flows = consume(bootstrap, f"{prefix}.flows.v1")
    statuses = values(consume(bootstrap, f"{prefix}.status.v1"))
    latest: dict[str, dict] = {}
    for v in values(flows):
        latest[v["event_id"]] = v
    status = {s["signature"]: s["status"] for s in statuses}
    return latest, status, len(flows)
