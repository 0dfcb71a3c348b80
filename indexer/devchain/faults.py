"""Fault injection for the simulator's RPC server, deterministic from a seed.

A fault file (JSON, or YAML when PyYAML is importable) looks like:

    {"seed": 3,
     "methods": {
        "*":              {"http_429": 0.02, "retry_after": 1, "http_5xx": 0.01, "latency_ms": 50,
                           "latency_rate": 0.1, "reset": 0.005, "truncate": 0.005, "malformed": 0.005,
                           "node_unhealthy": 0.0},
        "getBlock":       {"block_not_available": 0.05},
        "getTransaction": {"http_429": 0.1}},
     "websocket": {"drop_rate": 0.01, "stall_rate": 0.005, "stall_seconds": 30}}

Rates are probabilities per request (per websocket message for drops/stalls). Method entries
override "*" field by field. "block_not_available" answers -32004 for a block that exists (a node
that has not caught up), only for the methods where Solana can say so (getBlock, getBlockTime).
Each decision draws from `random.Random(f"{seed}:{method}:{n}")` where n counts that method's
requests, so a given request sequence always meets the same faults.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path

HTTP_FIELDS = ("http_429", "http_5xx", "reset", "truncate", "malformed", "node_unhealthy",
               "block_not_available", "latency_rate")
BLOCK_NOT_AVAILABLE_METHODS = ("getBlock", "getBlockTime")


@dataclass(slots=True)
class Decision:
    latency_ms: float = 0.0
    kind: str | None = None          # http_429 | http_5xx | reset | truncate | malformed |
    retry_after: int = 1             # node_unhealthy | block_not_available


@dataclass
class FaultConfig:
    seed: int = 0
    methods: dict[str, dict] = field(default_factory=dict)
    websocket: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._counters: dict[str, int] = {}
        self._ws_counter = 0

    # -- loading -------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict) -> FaultConfig:
        unknown = set(data) - {"seed", "methods", "websocket"}
        if unknown:
            raise ValueError(f"unknown fault config keys: {sorted(unknown)}")
        for method, spec in (data.get("methods") or {}).items():
            bad = set(spec) - set(HTTP_FIELDS) - {"retry_after", "latency_ms"}
            if bad:
                raise ValueError(f"unknown fault fields for {method}: {sorted(bad)}")
        return cls(seed=int(data.get("seed", 0)), methods=dict(data.get("methods") or {}),
                   websocket=dict(data.get("websocket") or {}))

    @classmethod
    def load(cls, path: str | Path) -> FaultConfig:
        text = Path(path).read_text()
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            try:
                import yaml
            except ImportError as e:  # pragma: no cover - depends on the environment
                raise ValueError(f"{path}: not JSON, and PyYAML is not installed for YAML") from e
            data = yaml.safe_load(text)
        return cls.from_dict(data or {})

    # -- decisions -----------------------------------------------------------------------------
    def _spec(self, method: str) -> dict:
        spec = dict(self.methods.get("*", {}))
        spec.update(self.methods.get(method, {}))
        return spec

    def decide(self, method: str) -> Decision:
        """The fault (if any) for the next request of `method` ("batch" for batch requests)."""
        n = self._counters.get(method, 0)
        self._counters[method] = n + 1
        spec = self._spec(method)
        if not spec:
            return Decision()
        rng = random.Random(f"{self.seed}:{method}:{n}")
        d = Decision(retry_after=int(spec.get("retry_after", 1)))
        if spec.get("latency_ms") and rng.random() < float(spec.get("latency_rate", 1.0)):
            d.latency_ms = float(spec["latency_ms"]) * (0.5 + rng.random())
        for kind in ("http_429", "http_5xx", "reset", "truncate", "malformed", "node_unhealthy",
                     "block_not_available"):
            rate = float(spec.get(kind, 0.0))
            if kind == "block_not_available" and method not in BLOCK_NOT_AVAILABLE_METHODS:
                continue
            if rate and rng.random() < rate:
                d.kind = kind
                break
        return d

    def decide_ws(self) -> str | None:
        """'drop' (close the socket), 'stall' (go silent) or None, per outgoing websocket message."""
        n = self._ws_counter
        self._ws_counter += 1
        if not self.websocket:
            return None
        rng = random.Random(f"{self.seed}:ws:{n}")
        if rng.random() < float(self.websocket.get("drop_rate", 0.0)):
            return "drop"
        if rng.random() < float(self.websocket.get("stall_rate", 0.0)):
            return "stall"
        return None

    @property
    def stall_seconds(self) -> float:
        return float(self.websocket.get("stall_seconds", 30))
