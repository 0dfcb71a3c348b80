"""The listener's full Kafka output of a simulated day, pinned byte for byte (golden digests).

WHY: the per-transaction path (parse -> classify -> serialize -> headers/keys) is tuned for CPU again
and again; none of that may change a single byte of what is published. Every message the processor
makes for every transaction of the day (topic, key, value, headers, in order) is hashed and compared
with the digest the code produced at a pinned commit (a87ad30, session 4 start), for the listener's
base64 encoding, at both commitments, and for the json and jsonParsed encodings on a subset.

If the output is meant to change (a schema or rule change), recompute the digests with
`python -m tests.pipelines.listen.test_golden_output` on the new code and say why in the commit.
DEPINFLOW_LONG=1 adds the bench day (tx-per-slot 10, ~19k fetched transactions).
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache

import pytest

from indexer.devchain.ledger import SimConfig, generate_ledger
from indexer.devchain.render import get_transaction_result
from indexer.sources.types import FetchedTx
from pipelines.kafka.topics import Topics
from pipelines.listen.processor import KafkaProcessor

# (tx_per_slot, encoding, commitment, every_nth) -> (messages, sha256 of the stream)
GOLDEN = {
    (2.0, "base64", "finalized", 1): (12806, "dfce3a833caed7d53e04a2af694b0e5c2ff063319770981f745c54aa9947187d"),
    (2.0, "base64", "confirmed", 1): (12806, "2732eaef37e3e40397b849d1472624bfcc5a7a957ffe4fd7978ef4bffd77e45e"),
    (2.0, "json", "finalized", 3): (4412, "74f5192b7f4bd8ccfb497dc2b85192f9252998f1ceefbe42d161bbfd7a41ad14"),
    (2.0, "jsonParsed", "finalized", 3): (4412, "74f5192b7f4bd8ccfb497dc2b85192f9252998f1ceefbe42d161bbfd7a41ad14"),
}
LONG_GOLDEN = {
    (10.0, "base64", "finalized", 1): (64262, "6a3307c5b7430a187c1adba69c0542f1756f9d532c5c8ee10106c4e475e76846"),
}


@lru_cache(maxsize=2)
def _ledger(tx_per_slot: float):
    return generate_ledger(SimConfig(seed=7, tx_per_slot=tx_per_slot))


def day_digest(tx_per_slot: float, encoding: str, commitment: str, every_nth: int) -> tuple[int, str]:
    """(messages, sha256) of everything the processor publishes for every `every_nth` transaction of the
    day (in block order), through process_batch's path (_emit) and messages_for alike."""
    from indexer.decode.txparse import clear_caches

    clear_caches()   # first sight, as in a fresh listener
    proc = KafkaProcessor(None, Topics("golden"))
    h = hashlib.sha256()
    count = 0
    i = 0
    for block in _ledger(tx_per_slot).blocks:
        for rec in block.transactions:
            i += 1
            if i % every_nth:
                continue
            tx = FetchedTx(rec.signature, block.slot, block.block_time, commitment,
                           get_transaction_result(rec, encoding, True), "backfill")
            msgs, ids, network = proc.messages_for(tx)
            for m in msgs:
                for part in (m.topic.encode(), m.key, m.value, repr(m.headers).encode()):
                    h.update(len(part).to_bytes(4, "little"))
                    h.update(part)
                count += 1
            h.update(repr((ids, network)).encode())
    return count, h.hexdigest()


CASES = {**GOLDEN, **(LONG_GOLDEN if os.environ.get("DEPINFLOW_LONG") == "1" else {})}


@pytest.mark.parametrize("case", sorted(CASES), ids=lambda c: f"{c[1]}-{c[2]}-{c[0]}tps-1of{c[3]}")
def test_output_of_a_simulated_day_is_unchanged(case):
    assert day_digest(*case) == CASES[case]


if __name__ == "__main__":   # print the digests of this tree (to pin them after an intended change)
    for c in [*GOLDEN, *LONG_GOLDEN]:
        print(c, day_digest(*c))
