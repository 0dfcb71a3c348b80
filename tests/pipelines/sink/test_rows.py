"""Message -> row: valid messages become exact rows; invalid ones are rejected with a reason."""

from __future__ import annotations

import orjson
import pytest

from indexer.networks.events import FlowEvent
from pipelines.clickhouse.tables import (
    COMMITMENT_STATUS,
    DEAD_LETTERS,
    EMISSIONS,
    FLOW_COLUMNS,
    INSTRUCTIONS,
    OTHER_FLOWS,
    USAGE_FEES,
)
from pipelines.sink.rows import (
    KIND_DEADLETTER,
    KIND_FLOW,
    KIND_INSTRUCTION,
    KIND_STATUS,
    Rejected,
    Source,
    parse,
)


def src(value, topic="t", headers=None) -> Source:
    raw = value if isinstance(value, bytes | type(None)) else orjson.dumps(value)
    return Source(topic, 2, 41, 1774656000123, b"sig", raw, headers or [])


def flow(**kw) -> dict:
    base = dict(signature="S", ix_path="3.1", network="helium", flow_class="usage_fee", subtype="onboarding",
                slot=409_000_000, block_time=1774656000, day="2026-03-28", program_id="p", program="helium",
                instruction="burn", mint="M", symbol="DC", amount_raw=4_000_000, decimals=0)
    base.update(kw)
    return FlowEvent(**base).to_dict()


def test_flow_routes_by_class_and_keeps_exact_values():
    spec, row = parse(KIND_FLOW, src(flow()))
    assert spec is USAGE_FEES
    r = dict(zip([c for c, _ in FLOW_COLUMNS], row, strict=True))
    assert r["event_id"] == "S:3.1" and r["leg"] is None
    assert r["day"] == 20540 and r["block_time"] == 1774656000000       # Date days, DateTime64(3) ticks
    assert r["amount_raw"] == 4_000_000 and r["usd"] is None
    assert r["version"] == 409_000_000 * 4 + 1 and r["is_deleted"] == 0
    assert parse(KIND_FLOW, src(flow(flow_class="emission", subtype="treasury")))[0] is EMISSIONS
    for cls in ("purchase", "reversal", "distribution", "transfer", "other"):
        assert parse(KIND_FLOW, src(flow(flow_class=cls)))[0] is OTHER_FLOWS
    _, fin = parse(KIND_FLOW, src(flow(commitment="finalized", leg=1, usd="0.5", amount_raw=2**64 - 1)))
    r = dict(zip([c for c, _ in FLOW_COLUMNS], fin, strict=True))
    assert r["event_id"] == "S:3.1:1" and r["version"] == 409_000_000 * 4 + 2
    assert r["usd"] == "0.5" and r["amount_raw"] == 2**64 - 1


@pytest.mark.parametrize("value, reason", [
    (b"{", "invalid_json"),
    (b"[]", "not_an_object"),
    (None, "empty_value"),
    ({**flow(), "amount_raw": -1}, "invalid_field"),
    (orjson.dumps(flow()).replace(b'"amount_raw":4000000', b'"amount_raw":18446744073709551616'),
     "invalid_field"),                                  # orjson reads > u64 as a float: refused, never rounded
    ({**flow(), "amount_raw": True}, "invalid_field"),
    ({**flow(), "slot": "1"}, "invalid_field"),
    ({**flow(), "day": "2026-13-01"}, "invalid_field"),
    ({**flow(), "day": "2150-01-01"}, "invalid_field"),
    ({**flow(), "usd": "NaN"}, "invalid_field"),
    ({**flow(), "usd": 0.1}, "invalid_field"),          # a float would already have lost exactness
    ({**flow(), "commitment": "processed"}, "invalid_field"),
    ({**flow(), "flow_class": "gift"}, "unknown_flow_class"),
    ({**flow(), "event_id": "S:3.2"}, "event_id_mismatch"),
    ({**flow(), "schema_version": "v2"}, "unsupported_schema_version"),
    ({k: v for k, v in flow().items() if k != "mint"}, "invalid_field"),
])
def test_invalid_flows_are_rejected_with_a_reason(value, reason):
    with pytest.raises(Rejected) as exc:
        parse(KIND_FLOW, src(value))
    assert exc.value.reason == reason


def test_instruction_row_serializes_json_and_takes_network_from_headers():
    rec = {"event_id": "S:2", "signature": "S", "slot": 5, "block_time": None, "ix_path": "2", "program_id": "p",
           "program": "helium_sub_daos", "instruction": "issue_rewards_v0", "args": {"epoch": 20540},
           "accounts": {"dao": "D"}, "extra_accounts": [], "outer_program": "", "outer_instruction": "",
           "parent_instruction": "", "tx_error": {"InstructionError": [0, "Custom"]}, "commitment": "confirmed",
           "schema_version": "v1"}
    spec, row = parse(KIND_INSTRUCTION, src(rec, headers=[("network", b"helium")]))
    r = dict(zip(INSTRUCTIONS.names, row, strict=True))
    assert spec is INSTRUCTIONS and r["network"] == "helium" and r["day"] == 0
    assert r["args"] == '{"epoch":20540}' and r["extra_accounts"] == "[]"
    assert r["tx_error"] == '{"InstructionError":[0,"Custom"]}'
    helium_program = "hdaoVTCqhfHHo75XdAMxBKdUqvq1i5bF23sisBqVgGR"
    _, row = parse(KIND_INSTRUCTION, src({**rec, "program_id": helium_program}))
    assert dict(zip(INSTRUCTIONS.names, row, strict=True))["network"] == "helium"
    _, row = parse(KIND_INSTRUCTION, src(rec))
    assert dict(zip(INSTRUCTIONS.names, row, strict=True))["network"] == ""


def test_status_and_upstream_dead_letter_rows():
    spec, row = parse(KIND_STATUS, src({"signature": "S", "slot": 9, "status": "retracted", "event_ids": ["S:1"],
                                        "block_time": 100, "schema_version": "v1"}))
    assert spec is COMMITMENT_STATUS and row == ("S", 9, "retracted", ["S:1"], 100_000, 9 * 4 + 3)
    with pytest.raises(Rejected):
        parse(KIND_STATUS, src({"signature": "S", "slot": 9, "status": "confirmed"}))
    spec, row = parse(KIND_DEADLETTER, src({"signature": "S", "slot": 9, "ix_path": "1", "stage": "decode",
                                            "reason": "r", "detail": "d", "raw_hex": "00", "block_time": None,
                                            "tx_error": None, "why_not": 1}))
    r = dict(zip(DEAD_LETTERS.names, row, strict=True))
    assert spec is DEAD_LETTERS and r["event_id"] == "S:1:decode" and r["source"] == "upstream"
    assert r["time"] == 1774656000123 and r["day"] == 20540        # no block time: the Kafka timestamp
    assert r["extra"] == '{"why_not":1}' and (r["topic"], r["partition"], r["offset"]) == ("t", 2, 41)
