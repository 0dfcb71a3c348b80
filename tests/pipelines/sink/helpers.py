"""Test data for the sink: flow events from the chain simulator's ground truth, and Kafka publishing."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import orjson

from indexer.devchain.ledger import Ledger, SimConfig, generate_ledger
from indexer.networks.config import default_config
from indexer.networks.events import FlowEvent
from pipelines.kafka.client import make_producer
from pipelines.kafka.messages import OutMessage, flow_message, record_message
from pipelines.kafka.topics import Topics


@lru_cache(maxsize=2)
def ledger(seed: int = 7) -> Ledger:
    return generate_ledger(SimConfig(seed=seed))


@lru_cache(maxsize=1)
def listener_day() -> tuple[OutMessage, ...]:
    """Every message the listener's real processor publishes for the simulated day (seed 7, topic
    prefix "day"): flows with their USD values, instruction records, dead letters."""
    from indexer.devchain.render import get_transaction_result
    from indexer.sources.types import FetchedTx
    from pipelines.listen.processor import KafkaProcessor

    proc = KafkaProcessor(None, Topics("day"))
    out: list[OutMessage] = []
    for block in ledger().blocks:
        for tx in block.transactions:
            msgs, _ids, _net = proc.messages_for(FetchedTx(
                tx.signature, block.slot, block.block_time, "confirmed",
                get_transaction_result(tx, "base64", True), "backfill"))
            out += msgs
    return tuple(out)


def flow_events(led: Ledger) -> list[tuple[FlowEvent, bool]]:
    """Every expected event of the ledger as a full FlowEvent at `confirmed`, with its forked flag."""
    cfg = default_config()
    out = []
    for e in led.expected_events():
        info = cfg.symbol_of(e["mint"])
        block = led.by_slot[e["slot"]]
        ev = FlowEvent(
            signature=e["signature"], ix_path=e["ix_path"], leg=e["leg"], network=e["network"],
            flow_class=e["flow_class"], subtype=e["subtype"], slot=e["slot"], block_time=block.block_time,
            day=e["day"], program_id="prog", program=e["network"], instruction=e.get("kind", ""),
            mint=e["mint"], symbol=info.symbol if info else "", decimals=info.decimals if info else 0,
            amount_raw=e["amount_raw"],
        )
        assert ev.event_id == e["event_id"]
        out.append((ev, e["forked"]))
    return out


def set_value(raw: bytes, key: str, text: str) -> bytes:
    """Replace the JSON text of `key`'s value in an orjson document (no spaces in orjson output)."""
    d = orjson.loads(raw)
    marker = b'"%s":%s' % (key.encode(), orjson.dumps(d[key]))
    assert raw.count(marker) == 1, (key, raw)
    return raw.replace(marker, b'"%s":%s' % (key.encode(), text.encode()))


def status_record(signature: str, slot: int, status: str, event_ids: list[str], block_time: int = 0) -> dict:
    return {"signature": signature, "slot": slot, "status": status, "event_ids": event_ids,
            "block_time": block_time, "schema_version": "v1"}


def statuses_for(events: list[tuple[FlowEvent, bool]]) -> list[dict]:
    """One status per transaction: finalized, or retracted for a forked block's transaction."""
    by_sig: dict[tuple[str, int], tuple[bool, list[str], int]] = {}
    for ev, forked in events:
        _, ids, _ = by_sig.setdefault((ev.signature, ev.slot), (forked, [], ev.block_time))
        ids.append(ev.event_id)
    return [status_record(sig, slot, "retracted" if forked else "finalized", ids, bt)
            for (sig, slot), (forked, ids, bt) in by_sig.items()]


def instruction_record(ev: FlowEvent) -> dict:
    return {"event_id": f"{ev.signature}:{ev.ix_path}", "signature": ev.signature, "slot": ev.slot,
            "block_time": ev.block_time, "ix_path": ev.ix_path, "program_id": ev.program_id,
            "program": ev.program, "instruction": ev.instruction, "args": {"amount": ev.amount_raw},
            "accounts": {"mint": ev.mint}, "extra_accounts": [], "outer_program": "", "outer_instruction": "",
            "parent_instruction": "", "tx_error": None, "commitment": "confirmed", "schema_version": "v1",
            "network": ev.network}


@dataclass
class Publisher:
    bootstrap: str
    topics: Topics
    sent: int = 0
    _producer: object = field(default=None, repr=False)

    def producer(self):
        if self._producer is None:
            self._producer = make_producer(self.bootstrap)
        return self._producer

    def send(self, messages: list[OutMessage]) -> None:
        p = self.producer()
        for m in messages:
            p.send(m.topic, key=m.key, value=m.value, headers=m.headers)
        p.flush()
        self.sent += len(messages)

    def raw(self, topic: str, value: bytes | None, key: bytes = b"poison", partition: int | None = None) -> None:
        self.producer().send(topic, key=key, value=value, partition=partition)
        self.producer().flush()

    def flows(self, events: list[FlowEvent]) -> None:
        self.send([flow_message(self.topics.flows, e) for e in events])

    def statuses(self, records: list[dict]) -> None:
        self.send([record_message(self.topics.status, "status", r) for r in records])

    def instructions(self, records: list[dict]) -> None:
        self.send([record_message(self.topics.instructions, "instruction", r) for r in records])

    def deadletters(self, records: list[dict]) -> None:
        self.send([record_message(self.topics.deadletter, "deadletter", r) for r in records])

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
