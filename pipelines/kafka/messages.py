"""Message encoding for the four topics: key = signature, value = orjson, headers describe the value.

Headers let downstream consumers route without parsing the value: `schema_version`, `network`,
`flow_class` (flows only) and `kind` (flow | instruction | deadletter | status).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import orjson

from indexer.networks.events import SCHEMA_VERSION, FlowEvent


@dataclass(slots=True)
class OutMessage:
    topic: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]


def _headers(kind: str, network: str = "", flow_class: str = "") -> list[tuple[str, bytes]]:
    h = [("schema_version", SCHEMA_VERSION.encode()), ("kind", kind.encode())]
    if network:
        h.append(("network", network.encode()))
    if flow_class:
        h.append(("flow_class", flow_class.encode()))
    return h


@lru_cache(maxsize=256)
def message_headers(kind: str, network: str = "", flow_class: str = "") -> list[tuple[str, bytes]]:
    """The headers of a message, built once per (kind, network, flow_class) and SHARED between
    messages: callers must not mutate the list. WHY: at thousands of messages per second, building
    and encoding four header tuples per message is a measurable part of the listener's CPU."""
    return _headers(kind, network, flow_class)


def flow_message(topic: str, event: FlowEvent) -> OutMessage:
    return OutMessage(topic, event.signature.encode(), event.to_json(),
                      _headers("flow", event.network, event.flow_class))


def record_message(topic: str, kind: str, record: dict, network: str = "") -> OutMessage:
    """Instruction, dead-letter and status records: plain dicts already JSON-safe."""
    return OutMessage(topic, str(record.get("signature", "")).encode(), orjson.dumps(record),
                      _headers(kind, network or str(record.get("network", ""))))


def header_map(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    return {k: v.decode("utf-8", "replace") for k, v in (headers or [])}
