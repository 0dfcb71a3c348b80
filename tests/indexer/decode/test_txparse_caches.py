"""The parser's memo caches stay bounded over a long stream of distinct values (issue 9).

A listener parses transactions for months; every distinct account key, CPI data string and checked
pubkey it meets must not stay in memory for ever. The caches are cleared when full, so their size
never exceeds _CACHE_MAX, and a value met again after a clear is rendered/decoded to the same result.
"""

from __future__ import annotations

import hashlib

from solders.pubkey import Pubkey

from indexer.decode import txparse
from indexer.decode.base58 import b58decode, b58encode


def _key(i: int) -> bytes:
    return hashlib.sha256(i.to_bytes(8, "little")).digest()


def test_caches_never_exceed_their_bound_and_answers_do_not_change():
    txparse.clear_caches()
    n = txparse._CACHE_MAX + 5_000
    first_key = str(Pubkey.from_bytes(_key(0)))
    first_data = b58encode(_key(0)[:20])
    peak = {"keys": 0, "data": 0, "seen": 0}
    for i in range(0, n, 100):   # 100 distinct keys per "transaction", as a wide account list
        raw = b"".join(_key(j) for j in range(i, i + 100))
        keys = txparse._render_missing(raw, 0, [None] * 100)
        assert keys[0] == str(Pubkey.from_bytes(_key(i)))
        assert txparse._all_pubkeys(keys)
        for j in range(i, i + 100):
            text = b58encode(_key(j)[:20])
            assert txparse._data(text) == _key(j)[:20]
        peak["keys"] = max(peak["keys"], len(txparse._KEY_STR))
        peak["data"] = max(peak["data"], len(txparse._B58_DATA))
        peak["seen"] = max(peak["seen"], len(txparse._PUBKEYS_SEEN))
    assert all(0 < v <= txparse._CACHE_MAX for v in peak.values()), peak
    assert max(peak.values()) > txparse._CACHE_MAX * 0.9          # the bound was reached, not avoided
    # values met again after the caches were cleared give the same answers
    assert txparse._render_missing(_key(0), 0, [None]) == [first_key]
    assert txparse._data(first_data) == b58decode(first_data) == _key(0)[:20]
    txparse.clear_caches()
