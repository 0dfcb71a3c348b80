"""base58: the five-digit fold for long strings decodes exactly what the per-digit form decodes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.decode.base58 import ALPHABET, b58decode, b58encode
from indexer.decode.errors import DecodeError


def _reference(text: str) -> bytes:
    """One big-number step per digit (the decoder's short-string form, kept here as the oracle)."""
    n = 0
    for c in text:
        n = n * 58 + ALPHABET.index(c)
    pad = len(text) - len(text.lstrip("1"))
    return b"\0" * pad + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 4))
def test_round_trip_every_length(raw: bytes, zeros: int) -> None:
    raw = b"\0" * zeros + raw
    text = b58encode(raw)
    assert b58decode(text) == raw == _reference(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET, min_size=0, max_size=200))
def test_any_base58_text_equals_reference(text: str) -> None:
    assert b58decode(text) == _reference(text)


@pytest.mark.parametrize("bad", ["0" * 30, "O" * 25, "I" + "2" * 40, "l", "2" * 24 + "é", "é" * 30, "2" * 29 + "\x00"])
def test_bad_characters_are_decode_errors_on_both_paths(bad: str) -> None:
    with pytest.raises(DecodeError) as exc:
        b58decode(bad)
    assert exc.value.reason == "malformed_transaction"
