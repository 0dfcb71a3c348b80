"""redact_url masks API keys wherever providers put them, and leaves plain URLs alone."""

from __future__ import annotations

import pytest

from indexer.rpc import redact_url


@pytest.mark.parametrize("url, expected", [
    ("http://127.0.0.1:8899", "http://127.0.0.1:8899"),
    ("https://api.mainnet-beta.solana.com", "https://api.mainnet-beta.solana.com"),
    ("https://mainnet.helius-rpc.com/?api-key=0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b",
     "https://mainnet.helius-rpc.com/?api-key=***"),
    ("https://solana-mainnet.g.alchemy.com/v2/AbCdEf0123456789xyzKEY", "https://solana-mainnet.g.alchemy.com/v2/***"),
    ("https://young-frost-123.solana-mainnet.quiknode.pro/9f8e7d6c5b4a39281716aa/",
     "https://young-frost-123.solana-mainnet.quiknode.pro/***/"),
    ("wss://user:hunter2@rpc.example.com/ws?token=abc&commitment=confirmed",
     "wss://user:***@rpc.example.com/ws?token=***&commitment=confirmed"),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redacted_url_never_contains_the_key():
    key = "sk_live_5f4dcc3b5aa765d61d8327deb882cf99"
    for url in (f"https://h.example/{key}", f"https://h.example/?apikey={key}", f"https://u:{key}@h.example"):
        assert key not in redact_url(url)
