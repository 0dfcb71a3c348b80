"""USD pricing: exact where the protocol fixes it, user-supplied elsewhere, never guessed."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from indexer.networks.prices import DC_USD, PriceBook, decimal_str, parse_hnt_price_log, usd_value

RENDER_MINT = "rndrizKT3MK1iimdxRdWabcF7Zg7AR5T4nud4EkHBof"


def test_dc_peg_is_exact():
    assert usd_value(12_345_678, 0, DC_USD) == "123.45678"
    assert usd_value(1, 0, DC_USD) == "0.00001"
    assert usd_value(0, 0, DC_USD) == "0"


def test_u64_amount_times_long_price_stays_exact():
    price = Decimal("1.234567890123456789012345678901")
    got = usd_value(2**64 - 1, 8, price)
    product = (2**64 - 1) * 1234567890123456789012345678901      # exact integer arithmetic
    whole, frac = divmod(product, 10**38)                          # 8 token decimals + 30 price decimals
    assert got == f"{whole}.{frac:038d}".rstrip("0")


def test_hnt_price_log_of_mint_data_credits():
    line = "Program log: HNT Price is 412345678 * 10^-8, issuing 103086 data credits"
    assert parse_hnt_price_log(line) == Decimal("4.12345678")
    assert parse_hnt_price_log("Program log: Instruction: MintDataCreditsV0") is None
    assert decimal_str(parse_hnt_price_log("HNT Price is 5 * 10^2, issuing 1 data credits")) == "500"


def test_price_book_from_csv_and_json(tmp_path):
    csv = tmp_path / "p.csv"
    csv.write_text(f"token,day,usd\nhnt,2026-03-31,2.51\n{RENDER_MINT},2026-03-31,4.2\n")
    book = PriceBook.load(csv)
    assert len(book) == 2
    assert book.get("HNT", "hntyVP6YFm1Hg25TN9WGLqM12b8TQmcknKrdu1oxWux", "2026-03-31") == Decimal("2.51")
    assert book.get("RENDER", RENDER_MINT, "2026-03-31") == Decimal("4.2")    # by mint
    assert book.get("HNT", "", "2026-04-01") is None                          # unknown day: None, not a guess
    js = tmp_path / "p.json"
    js.write_bytes(orjson.dumps({"MOBILE": {"2025-01-01": "0.0012"}}))
    assert PriceBook.load(js).get("mobile", "", "2025-01-01") == Decimal("0.0012")
    js.write_bytes(orjson.dumps([{"token": "IOT", "day": "2025-01-01", "usd": 0.0009}]))
    assert PriceBook.load(js).get("IOT", "", "2025-01-01") == Decimal("0.0009")


@pytest.mark.parametrize("row", ["HNT,31-03-2026,1", "HNT,2026-03-31,abc", "HNT,2026-03-31,-1"])
def test_price_book_rejects_bad_rows(tmp_path, row):
    p = tmp_path / "p.csv"
    p.write_text("token,day,usd\n" + row + "\n")
    with pytest.raises(ValueError):
        PriceBook.load(p)


def test_price_book_requires_its_header(tmp_path):
    p = tmp_path / "p.csv"
    p.write_text("symbol,date,price\nHNT,2026-03-31,1\n")
    with pytest.raises(ValueError, match="lacks"):
        PriceBook.load(p)
