"""USD values of flow events: exact where the protocol fixes the price, never guessed elsewhere.

Three sources, in order:
1. DC is pegged by the protocol: 1 DC = $0.00001 (`dc_exponent = 5` in mint_data_credits_v0).
2. HNT burned for DC: the price the program itself used, logged as
   `HNT Price is {p} * 10^{e}, issuing {n} data credits` (Pyth EMA - 2*conf) in that purchase.
3. Anything else: a user-supplied PriceBook of (token, day, usd) rows (CSV or JSON).
Unknown -> None. All arithmetic is Decimal with enough precision to be exact for u64 amounts.
"""

from __future__ import annotations

import csv
import io
import re
from decimal import Context, Decimal, InvalidOperation
from pathlib import Path

import orjson

DC_USD = Decimal("0.00001")
_CTX = Context(prec=80)  # u64 amount (20 digits) x price (<= 40 digits) stays exact
_HNT_PRICE_RE = re.compile(r"HNT Price is (-?\d+) \* 10\^(-?\d+)")


def decimal_str(value: Decimal) -> str:
    """Plain (no exponent) decimal string without trailing zeros: '0.00787', '12', '0'."""
    if value == 0:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def usd_value(amount_raw: int, decimals: int, usd_per_token: Decimal) -> str:
    """Exact USD value of `amount_raw` base units at `usd_per_token` per whole token.

    Integer arithmetic on the price's (coefficient, exponent), memoized per price (a stream has few
    distinct prices: the DC peg, one per day and token): the same string as the Decimal computation
    (_usd_value_decimal, held to it in tests) at a fraction of the cost; it runs for most events.
    """
    parts = _PRICE_PARTS.get(usd_per_token)
    if parts is None:
        parts = _price_parts(usd_per_token)
    if parts is False or type(amount_raw) is not int or type(decimals) is not int:
        return _usd_value_decimal(amount_raw, decimals, usd_per_token)
    coef, exp = parts
    product = amount_raw * coef
    if not product:
        return "0"
    digits = str(product)
    if len(digits) > 79:  # beyond _CTX's precision the Decimal computation rounds: keep its result
        return _usd_value_decimal(amount_raw, decimals, usd_per_token)
    scale = decimals - exp
    if scale <= 0:
        return digits + "0" * -scale
    sign = ""
    if digits[0] == "-":
        sign, digits = "-", digits[1:]
    if len(digits) <= scale:
        digits = "0" * (scale - len(digits) + 1) + digits
    frac = digits[-scale:].rstrip("0")
    whole = digits[:-scale]
    return f"{sign}{whole}.{frac}" if frac else sign + whole


_PRICE_PARTS: dict[Decimal, tuple[int, int] | bool] = {}


def _price_parts(price: Decimal) -> tuple[int, int] | bool:
    """(signed integer coefficient, exponent) of a finite Decimal, else False (the Decimal path)."""
    if type(price) is not Decimal or not price.is_finite():
        return False
    sign, digits, exp = price.as_tuple()
    coef = int("".join(map(str, digits)) or "0")
    parts = (-coef if sign else coef, exp)
    if len(_PRICE_PARTS) >= 4096:
        _PRICE_PARTS.clear()
    _PRICE_PARTS[price] = parts
    return parts


def _usd_value_decimal(amount_raw: int, decimals: int, usd_per_token: Decimal) -> str:
    """The reference computation of usd_value (Decimal, 80 digits)."""
    whole = Decimal(amount_raw).scaleb(-decimals, _CTX)
    return decimal_str(_CTX.multiply(whole, usd_per_token))


def parse_hnt_price_log(line: str) -> Decimal | None:
    """USD per HNT from a mint_data_credits_v0 log line, or None when the line is not one."""
    m = _HNT_PRICE_RE.search(line)
    if not m:
        return None
    return Decimal(int(m.group(1))).scaleb(int(m.group(2)), _CTX)


class PriceBook:
    """Daily USD prices supplied by the user: (token, day) -> USD per whole token.

    `token` is a symbol (case-insensitive: "HNT", "render") or a mint address; `day` is
    YYYY-MM-DD (UTC). A lookup tries the mint first, then the symbol.
    """

    def __init__(self, rows: dict[tuple[str, str], Decimal] | None = None) -> None:
        self._rows: dict[tuple[str, str], Decimal] = {}
        for (token, day), usd in (rows or {}).items():
            self.add(token, day, usd)

    def __len__(self) -> int:
        return len(self._rows)

    @staticmethod
    def _key(token: str) -> str:
        # symbols are short; mint addresses are base58 and case-sensitive
        return token.upper() if len(token) <= 16 else token

    def add(self, token: str, day: str, usd: Decimal | str | float) -> None:
        try:
            price = Decimal(str(usd))
        except InvalidOperation as exc:
            raise ValueError(f"bad USD price {usd!r} for {token} {day}") from exc
        if not price.is_finite() or price < 0:
            raise ValueError(f"bad USD price {usd!r} for {token} {day}")
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            raise ValueError(f"bad day {day!r} (want YYYY-MM-DD)")
        self._rows[(self._key(token.strip()), day)] = price

    def get(self, symbol: str, mint: str, day: str) -> Decimal | None:
        price = self._rows.get((mint, day)) if mint else None
        if price is None and symbol:
            price = self._rows.get((symbol.upper(), day))
        return price

    @classmethod
    def load(cls, path: str | Path) -> PriceBook:
        """Load a CSV (header `token,day,usd`) or JSON file.

        JSON may be a list of `{"token", "day", "usd"}` objects or `{token: {day: usd}}`.
        """
        raw = Path(path).read_bytes()
        book = cls()
        if str(path).lower().endswith(".json"):
            data = orjson.loads(raw)
            if isinstance(data, dict):
                for token, days in data.items():
                    for day, usd in days.items():
                        book.add(token, day, usd)
            else:
                for row in data:
                    book.add(row["token"], row["day"], row["usd"])
            return book
        reader = csv.DictReader(io.StringIO(raw.decode()))
        missing = {"token", "day", "usd"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: CSV header lacks {sorted(missing)}")
        for row in reader:
            book.add(row["token"], row["day"].strip(), row["usd"].strip())
        return book
