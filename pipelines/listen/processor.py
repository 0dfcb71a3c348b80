"""The listener's Processor: getTransaction result -> decode -> classify -> Kafka messages.

One transaction becomes: its flow events (flows topic), one record per decoded instruction of a
watched program (instructions topic) and its dead letters (deadletter topic), all keyed by signature.
A transaction that cannot even be parsed becomes a single dead letter (stage "parse") with its raw
bytes: nothing is dropped silently. Failed transactions are classified too: the classifier yields
their instruction records (with tx_error) but never flows.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import gc
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import orjson
import structlog

from indexer.decode.errors import DecodeError
from indexer.decode.txparse import parse_transaction
from indexer.networks.classify import Classifier
from indexer.networks.events import SCHEMA_VERSION, FlowEvent
from indexer.sources.types import Delivery, FetchedTx, Prepared
from pipelines.kafka.messages import OutMessage, message_headers, record_message
from pipelines.kafka.topics import Topics
from pipelines.listen.publisher import KafkaPublisher

log = structlog.get_logger("pipelines.listen")


# gen-0 threshold of the cyclic garbage collector in listener processes (see tune_gc); CPython's default is 700
GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> tuple[int, int, int] | None:
    """Let the cyclic garbage collector run ~70x less often in a listener process (idempotent).

    Returns the thresholds it replaced (None when it changed nothing), for restore_gc.

    WHY: every transaction allocates ~100 container objects (the RPC body's dicts and lists, the
    instruction tree, records, events) and frees nearly all of them by reference counting within
    milliseconds; cycles are rare (a few hundred objects per 18k transactions). With the default
    gen-0 threshold of 700, a backfill pass of 18k transactions ran ~800 gen-0, ~70 gen-1 and ~7 full
    collections, each traversing the batches in flight (and the full ones every module, the program
    registry and the memo caches): 0.55-0.73 CPU-s per pass, 10-13 % of the listener's CPU. At
    50,000 the same pass runs none, and the rare cyclic garbage is still collected, only later.
    gen-1/gen-2 thresholds are left as they are. What a bench pass leaves to the cycle collector are
    per-listener objects (kafka-python metrics of the topic check, closed HTTP transports, checkpoint
    positions), not per-transaction ones, so a long run does not accumulate more than before."""
    old = gc.get_threshold()
    if old[0] >= GC_GEN0_THRESHOLD:
        return None
    gc.set_threshold(GC_GEN0_THRESHOLD, old[1], old[2])
    return old


def restore_gc(old: tuple[int, int, int] | None) -> None:
    """Undo tune_gc (a Listener run inside a larger process, e.g. tests, leaves the thresholds as it found them)."""
    if old is not None:
        gc.set_threshold(*old)


@dataclass
class ProcessStats:
    txs: Counter = field(default_factory=Counter)            # commitment -> transactions processed
    events: Counter = field(default_factory=Counter)         # (network, flow_class) -> flow events
    instructions: int = 0
    dead_letters: Counter = field(default_factory=Counter)   # (stage, reason) -> dead letters
    statuses: Counter = field(default_factory=Counter)       # status -> records published
    failed_txs: int = 0
    # decode + classify + serialize + produce() CPU of the calling thread (time.thread_time: a wall clock
    # here counted the time other processes held the core, ~3x the CPU with workers on a loaded machine)
    cpu_seconds: float = 0.0


class KafkaProcessor:
    """Implements indexer.sources.types.Processor on top of a KafkaPublisher."""

    def __init__(self, publisher: KafkaPublisher, topics: Topics, classifier: Classifier | None = None,
                 publish_instructions: bool = True, stats: ProcessStats | None = None,
                 batch_publisher_factory: Callable[[], object] | None = None) -> None:
        self.publisher = publisher
        # process_batch (backfill) may publish through its own producer, created on first use, with
        # throughput settings (longer linger) that would cost live traffic its latency
        self._batch_publisher_factory = batch_publisher_factory
        self.batch_publisher = None
        self.topics = topics
        self.classifier = classifier or Classifier()
        self.publish_instructions = publish_instructions
        self.stats = stats or ProcessStats()
        # message_headers per (network, flow_class) / network, looked up here without two calls per message
        self._flow_headers: dict[tuple[str, str], list] = {}
        self._record_headers: dict[str, list] = {}

    def messages_for(self, tx: FetchedTx) -> tuple[list[OutMessage], list[str], str]:
        """(messages, event ids, network) for one fetched transaction."""
        msgs: list[OutMessage] = []
        ids: list[str] = []

        def collect(topic: str, value: bytes, key: bytes, headers: list) -> None:
            msgs.append(OutMessage(topic, key, value, headers))

        network = self._emit(tx, collect, ids)
        return msgs, ids, network

    def _emit(self, tx: FetchedTx, send: Callable[[str, bytes, bytes, list], None],
              ids: list[str] | None = None) -> str:
        """Decode + classify one transaction and hand each of its messages to `send(topic, value, key,
        headers)`; returns the transaction's network ("" when unknown). `ids` collects event ids.

        WHY one function for both paths: messages_for (live, fuzz tests) and process_batch (backfill)
        must produce the same bytes; only the sink of the messages differs. Headers come from a cache
        per (kind, network, flow_class) and the key is encoded once per transaction."""
        try:
            parsed = parse_transaction(tx.result, tx.signature)
        except DecodeError as exc:
            return self._emit_parse_dead_letter(tx, exc.reason, exc.detail, send, ids)
        except (KeyError, TypeError, ValueError, IndexError, binascii.Error) as exc:
            return self._emit_parse_dead_letter(tx, "malformed_transaction", f"{type(exc).__name__}: {exc}",
                                                send, ids)
        if parsed.err is not None:
            self.stats.failed_txs += 1
        out = self.classifier.classify(parsed, tx.commitment)
        sig = tx.signature
        key = sig.encode()
        network = ""
        stats = self.stats
        dumps = orjson.dumps
        flows = out.flows
        if flows:
            topic = self.topics.flows
            events = stats.events
            headers = self._flow_headers
            for ev in flows:
                net, cls = ev.network, ev.flow_class
                hdr = headers.get((net, cls))
                if hdr is None:
                    hdr = headers[(net, cls)] = message_headers("flow", net, cls)
                send(topic, dumps(ev), key if ev.signature == sig else ev.signature.encode(), hdr)
                events[(net, cls)] += 1
                if ids is not None:
                    ids.append(ev.event_id)
                network = network or net
        records = out.instructions
        if records and self.publish_instructions:
            topic = self.topics.instructions
            headers = self._record_headers
            for rec in records:
                net = rec.get("network", "")
                hdr = headers.get(net)
                if hdr is None:
                    hdr = headers[net] = message_headers("instruction", net)
                send(topic, dumps(rec), key if rec.get("signature") == sig else _key(rec), hdr)
                if ids is not None:
                    ids.append(rec["event_id"])
                network = network or net
            stats.instructions += len(records)
        for rec in out.dead_letters:
            net = rec.get("network", "")
            send(self.topics.deadletter, dumps(rec), key if rec.get("signature") == sig else _key(rec),
                 message_headers("deadletter", net))
            if ids is not None:
                ids.append(rec["event_id"])
            network = network or net
            stats.dead_letters[(rec.get("stage", ""), rec.get("reason", ""))] += 1
        return network

    def _emit_parse_dead_letter(self, tx: FetchedTx, reason: str, detail: str,
                                send: Callable[[str, bytes, bytes, list], None], ids: list[str] | None) -> str:
        record = self._parse_dead_letter(tx, reason, detail)
        self.stats.dead_letters[("parse", record["reason"])] += 1
        msg = record_message(self.topics.deadletter, "deadletter", record)
        send(msg.topic, msg.value, msg.key, msg.headers)
        if ids is not None:
            ids.append(record["event_id"])
        return ""

    def prepare(self, tx: FetchedTx) -> Prepared:
        started = time.thread_time()
        msgs, ids, network = self.messages_for(tx)
        self.stats.txs[tx.commitment] += 1
        self.stats.cpu_seconds += time.thread_time() - started
        return Prepared(tx, msgs, ids, network)

    def submit(self, prepared: Prepared) -> Delivery:
        return self.publisher.submit(prepared.messages, prepared.event_ids, prepared.network)

    def process(self, tx: FetchedTx) -> Delivery:
        return self.submit(self.prepare(tx))

    def process_batch(self, txs: Sequence[FetchedTx]) -> asyncio.Future:
        """Decode, classify and hand a whole RPC batch to the producer in one synchronous pass.

        WHY: the backfill needs only "all of this batch is acknowledged" (its windows commit whole),
        so one acknowledgement countdown and one future per batch replace per-transaction futures,
        Delivery objects, OutMessage objects and gathers, which cost as much as the producer itself
        at thousands of transactions per second. The future fails with the first send error."""
        started = time.thread_time()
        publisher = self.batch_publisher
        if publisher is None:
            factory = self._batch_publisher_factory
            publisher = self.batch_publisher = factory() if factory is not None else self.publisher
        batch = publisher.batch()
        send = batch.send
        emit = self._emit
        for tx in txs:
            emit(tx, send)
        self.stats.txs[txs[0].commitment if txs else "finalized"] += len(txs)
        self.stats.cpu_seconds += time.thread_time() - started
        return batch.seal()

    def publish_status(self, record: dict, network: str = "") -> Delivery:
        self.stats.statuses[record["status"]] += 1
        msg = record_message(self.topics.status, "status", record, network)
        return self.publisher.submit([msg], [], network)

    @staticmethod
    def _parse_dead_letter(tx: FetchedTx, reason: str, detail: str) -> dict:
        raw = b""
        wire = (tx.result or {}).get("transaction") if isinstance(tx.result, dict) else None
        if isinstance(wire, list) and wire and isinstance(wire[0], str):
            try:
                raw = base64.b64decode(wire[0])
            except (binascii.Error, ValueError):
                raw = wire[0].encode()
        meta = (tx.result or {}).get("meta") if isinstance(tx.result, dict) else None
        err = meta.get("err") if isinstance(meta, dict) else None
        return {
            "event_id": f"{tx.signature}::parse",
            "network": "",
            "signature": tx.signature,
            "slot": tx.slot,
            "block_time": tx.block_time,
            "ix_path": "",
            "program_id": "",
            "program": "",
            "stage": "parse",
            "reason": reason if reason else "malformed_transaction",
            "detail": detail[:2000],
            "raw_hex": raw.hex(),
            "tx_error": None if err is None else str(err),
            "commitment": tx.commitment,
            "schema_version": SCHEMA_VERSION,
        }


def _key(record: dict) -> bytes:
    """record_message's key rule, for the (never seen) record whose signature is not its transaction's."""
    return str(record.get("signature", "")).encode()


def _flow_message(topic: str, event: FlowEvent) -> OutMessage:
    """pipelines.kafka.messages.flow_message with the listener's cached headers (same bytes, tested)."""
    return OutMessage(topic, event.signature.encode(), orjson.dumps(event),
                      message_headers("flow", event.network, event.flow_class))
