"""base58: the five-digit fold for long strings and the Rust fixed-size path for short ones decode exactly
what the per-digit form decodes."""

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


def _boundary_values() -> list[int]:
    """Values at the edges of every byte length and every digit count the Rust fast path handles."""
    out = {0, 1}
    for k in range(1, 66):
        out.update({256**k - 1, 256**k, 256**k + 1})
    for k in range(1, 90):
        out.update({58**k - 1, 58**k, 58**k + 1, 2 * 58**k})
    return sorted(out)


@pytest.mark.parametrize("zeros", [0, 1, 3, 31, 33])
def test_fast_path_equals_the_python_codec_at_every_length_boundary(zeros: int) -> None:
    from indexer.decode.base58 import _b58decode_py

    for n in _boundary_values():
        raw = b"\0" * zeros + (n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b"")
        text = b58encode(raw)
        assert b58decode(text) == _b58decode_py(text) == _reference(text) == raw, text


def test_fast_path_every_digit_count_smallest_and_largest() -> None:
    from indexer.decode.base58 import _b58decode_py

    for chars in range(1, 100):
        for text in ("2" + "1" * (chars - 1), "z" * chars, "1" + "z" * chars, "2" * chars):
            assert b58decode(text) == _b58decode_py(text) == _reference(text), text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=ALPHABET + "0OIl é\x00", min_size=0, max_size=100))
def test_any_text_decodes_or_fails_exactly_like_the_python_codec(text: str) -> None:
    from indexer.decode.base58 import _b58decode_py

    try:
        want: bytes | str = _b58decode_py(text)
    except DecodeError as exc:
        want = exc.reason
    try:
        got: bytes | str = b58decode(text)
    except DecodeError as exc:
        got = exc.reason
    assert got == want
