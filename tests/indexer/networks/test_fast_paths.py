"""The classifier's fast paths give exactly what their reference forms give.

Each fast path (issue 6: CPU per transaction) keeps its straightforward form next to it as the
reference: raw SPL Token movements by table vs the generic decoder, exact amounts by string
arithmetic vs Decimal, USD values by integer arithmetic vs Decimal, args made JSON-safe in one loop
vs the recursive form, instruction records as one dict display vs the record base. Checked on the
simulated day (every encoding), the mainnet fixtures and generated edge cases.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.decode.model import Instruction
from indexer.decode.spl_token import TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID
from indexer.decode.txparse import parse_transaction
from indexer.devchain.ledger import SimConfig, generate_ledger
from indexer.devchain.render import get_transaction_result
from indexer.networks.classify import Classifier, json_safe
from indexer.networks.context import TxContext
from indexer.networks.events import _exact_amount_decimal, exact_amount
from indexer.networks.prices import DC_USD, _usd_value_decimal, usd_value
from indexer.networks.tokens import Balances, _spl_token_op_generic, spl_token_op
from tests.refdata import reference_path

FIXTURES = ("helium/fixtures/hsd_claim_rewards.json", "helium/fixtures/lazy_distributor_distribute.json")
ENCODINGS = ("base64", "json", "jsonParsed")


@pytest.fixture(scope="module")
def transactions():
    """Every transaction of a small simulated day in the three encodings, plus the mainnet fixtures."""
    ledger = generate_ledger(SimConfig(seed=11, slots_per_day=600, tx_per_slot=3))
    txs = [parse_transaction(get_transaction_result(rec, enc, True))
           for rec in ledger.transactions() for enc in ENCODINGS]
    for name in FIXTURES:
        txs.append(parse_transaction(json.loads(reference_path(name).read_text())))
    return txs


def test_token_ops_equal_the_generic_decoder_on_real_transactions(transactions):
    tokens = {TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID}
    seen = moved = 0
    for tx in transactions:
        balances = Balances(tx)
        for ix in tx.walk():
            if ix.program_id in tokens:
                seen += 1
                fast, slow = spl_token_op(ix, balances), _spl_token_op_generic(ix, balances)
                assert fast == slow, (tx.signature, ix.path)
                moved += fast is not None
    assert seen > 1000 and moved > 500  # the day really exercises the path


def _ix(program_id: str, data: bytes, n_accounts: int) -> Instruction:
    accounts = [f"Acc{i}1111111111111111111111111111111111111"[:44] for i in range(n_accounts)]
    return Instruction("3.1", program_id, accounts, data, 2)


def test_token_ops_equal_the_generic_decoder_on_every_tag_length_and_account_count(transactions):
    balances = Balances(transactions[0])
    programs = (TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID, "11111111111111111111111111111111")
    checked = 0
    for program in programs:
        for tag in range(0, 32):
            for sub in (0, 1, 2):
                for length in range(0, 22):
                    data = bytes([tag, sub] + [(7 * i + 3) % 256 for i in range(max(length - 2, 0))])[:length]
                    for n_accounts in range(0, 6):
                        ix = _ix(program, data, n_accounts)
                        assert spl_token_op(ix, balances) == _spl_token_op_generic(ix, balances), (
                            program, tag, sub, length, n_accounts)
                        checked += 1
    assert checked > 30_000


@settings(max_examples=400, deadline=None)
@given(st.integers(min_value=-(10**30), max_value=10**30), st.integers(min_value=0, max_value=40))
def test_exact_amount_equals_decimal_form(amount, decimals):
    assert exact_amount(amount, decimals) == _exact_amount_decimal(amount, decimals)


@pytest.mark.parametrize("amount", [0, 1, 9, 10, 100, 12_345_678, 2**64 - 1, 10**28 - 1, 10**28, 10**40])
@pytest.mark.parametrize("decimals", [0, 1, 6, 8, 9, 28, 255])
def test_exact_amount_edges(amount, decimals):
    assert exact_amount(amount, decimals) == _exact_amount_decimal(amount, decimals)


_PRICES = st.one_of(
    st.decimals(allow_nan=False, allow_infinity=False, places=None, min_value=Decimal(0), max_value=Decimal(10**9)),
    st.sampled_from([DC_USD, Decimal(0), Decimal("1E+3"), Decimal("12.3400"), Decimal("0E-8"),
                     Decimal("3." + "1" * 75), Decimal("-2.5")]),
)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=2**64 - 1), st.integers(min_value=0, max_value=18), _PRICES)
def test_usd_value_equals_decimal_form(amount, decimals, price):
    assert usd_value(amount, decimals, price) == _usd_value_decimal(amount, decimals, price)


def _json_safe_reference(value):
    """The recursive form json_safe had before its inlined top level."""
    t = type(value)
    if t is int:
        return value if -(2**63) <= value <= 2**63 - 1 else str(value)
    if t is str or value is None or t is bool or t is float:
        return value
    if t is dict:
        return {k if type(k) is str else str(k): _json_safe_reference(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [_json_safe_reference(v) for v in value]
    if t is bytes or t is bytearray or t is memoryview:
        return bytes(value).hex()
    if isinstance(value, int):
        return _json_safe_reference(int(value))
    return str(value)


_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.text(max_size=5), st.binary(max_size=6), st.floats(allow_nan=False))
_VALUES = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner),
    st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 9)), inner, max_size=4)), max_leaves=12)


@settings(max_examples=120, deadline=None)
@given(st.dictionaries(st.one_of(st.text(max_size=4), st.integers(0, 9)), _VALUES, max_size=6))
def test_json_safe_equals_reference(args):
    got, want = json_safe(args), _json_safe_reference(args)
    assert got == want and list(got) == list(want)
    assert json.dumps(got, sort_keys=False) == json.dumps(want, sort_keys=False)


def test_instruction_records_keep_the_record_base_field_order(transactions):
    clf = Classifier()
    records = 0
    for tx in transactions:
        ctx = TxContext(tx, clf.config, "confirmed", clf.rules.names)
        order = list(ctx.record_base())
        for rec in clf.classify(tx).instructions:
            assert list(rec) == order
            base = ctx.record_base()
            assert {k: rec[k] for k in ("signature", "slot", "block_time", "tx_error", "commitment",
                                        "schema_version")} == {k: base[k] for k in (
                "signature", "slot", "block_time", "tx_error", "commitment", "schema_version")}
            records += 1
    assert records > 1000


def test_event_json_is_the_dict_json(transactions):
    """The listener serializes events with orjson.dumps(event) (no dict built): the same bytes as the
    dict form the schema and the sink's parser are written against."""
    import orjson

    clf = Classifier()
    events = [ev for tx in transactions for ev in clf.classify(tx).flows]
    assert len(events) > 1000
    for ev in events:
        raw = orjson.dumps(ev)
        assert raw == ev.to_json() == orjson.dumps(ev.to_dict())
