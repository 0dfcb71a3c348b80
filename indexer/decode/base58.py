"""Base58 (Bitcoin alphabet) for Solana.

Pubkeys (32 bytes) go through solders, which renders them in Rust (~0.4 µs); arbitrary
byte strings (instruction data in `json`/`jsonParsed` responses) use the pure-Python
big-integer codec below. Both are exact inverses of each other.
"""

from __future__ import annotations

from solders.pubkey import Pubkey
from solders.signature import Signature

from indexer.decode.errors import DecodeError

ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_pk_from_bytes = Pubkey.from_bytes
_pk_from_string = Pubkey.from_string


def pubkey_str(raw: bytes) -> str:
    """Base58 of a 32-byte public key."""
    return str(_pk_from_bytes(raw))


def pubkey_bytes(text: str) -> bytes:
    """The 32 bytes of a base58 public key (raises ValueError when not a pubkey)."""
    return bytes(_pk_from_string(text))


def b58encode(raw: bytes) -> str:
    """Base58 of arbitrary bytes (leading zero bytes become leading '1's)."""
    if len(raw) == 32:
        return str(_pk_from_bytes(raw))
    n = int.from_bytes(raw, "big")
    out = []
    while n:
        n, r = divmod(n, 58)
        out.append(ALPHABET[r])
    pad = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * pad + "".join(reversed(out))


_DIGITS = bytes(ALPHABET.index(chr(i)) if chr(i) in ALPHABET else 255 for i in range(128)) + b"\xff" * 128
_B58_5 = 58**5   # five digits fold into one 30-bit int digit before touching the big number


def _byte_lengths(chars: int) -> tuple[int, ...]:
    """Possible byte lengths of the value of `chars` base58 digits whose first digit is not '1'."""
    low, high = 58 ** (chars - 1), 58**chars - 1
    return tuple(range((low.bit_length() + 7) // 8, (high.bit_length() + 7) // 8 + 1))


# Solders' fixed-size base58 parsers (Rust): value byte length -> parser of exactly that many bytes.
# 32 bytes: Pubkey (strings of at most 44 characters), 64: Signature (at most 88). See b58decode.
_FIXED = [(Pubkey.from_string, 32)] * 33 + [(Signature.from_string, 64)] * 32
_LENGTHS = [()] + [tuple(n for n in _byte_lengths(c) if n <= 64) for c in range(1, 89)]


def b58decode(text: str) -> bytes:
    """Bytes of a base58 string; DecodeError('malformed_transaction') on a bad character.

    Strings of up to 64 bytes (CPI instruction data in `json`/`base64` responses: ~2 distinct ones
    per transaction) are decoded in Rust by solders' fixed-size parsers, ~2.5x cheaper than the
    Python loop: leading '1's are zero bytes in base58, so padding the digits with '1's to exactly
    32 (or 64) bytes and dropping the padding gives the value's bytes. The value's byte length is
    one of at most two (by its digit count); a wrong guess fails the parser's size check. Anything
    the parsers refuse (bad characters) takes the Python path below, which raises the error.
    """
    body = text.lstrip("1")
    chars = len(body)
    if 0 < chars <= 88:
        for size in _LENGTHS[chars]:
            parse, width = _FIXED[size]
            try:
                raw = bytes(parse("1" * (width - size) + body))
            except ValueError:
                continue
            return b"\0" * (len(text) - chars) + raw[width - size:]
    return _b58decode_py(text)


def _b58decode_py(text: str) -> bytes:
    """b58decode in Python: any length, and the oracle of the fast path (tests/indexer/decode/test_base58.py).

    Long strings (instruction data in `json` encodings: CPI logs, compressed-NFT payloads) are
    folded five digits at a time, ~40 % cheaper than one big-number step per digit.
    """
    if len(text) <= 24:
        n = 0
        idx = _INDEX
        try:
            for c in text:
                n = n * 58 + idx[c]
        except KeyError:
            raise DecodeError("malformed_transaction", f"invalid base58 character in {text[:40]!r}") from None
    else:
        try:
            digits = text.encode("ascii").translate(_DIGITS)
        except UnicodeEncodeError:
            digits = b"\xff"
        if 255 in digits:
            raise DecodeError("malformed_transaction", f"invalid base58 character in {text[:40]!r}")
        head = len(digits) % 5
        n = 0
        for d in digits[:head]:
            n = n * 58 + d
        it = iter(digits[head:])
        for a, b, c, d, e in zip(it, it, it, it, it, strict=True):  # len(digits) - head = 5k
            n = n * _B58_5 + (((a * 58 + b) * 58 + c) * 58 + d) * 58 + e
    pad = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * pad + body
