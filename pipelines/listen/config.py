"""Listener settings: defaults < TOML file < environment variables < explicit overrides (CLI flags).

Same precedence and file format as the sink (pipelines/sink/config.py), so one deployment file can
carry both: the listener reads [kafka], [rpc], [listen] and [metrics] and ignores other sections.

    [rpc]
    url = "https://mainnet.helius-rpc.com/?api-key=..."     # or SOLANA_RPC_URL
    ws_url = "wss://mainnet.helius-rpc.com/?api-key=..."    # or SOLANA_WS_URL; default derived from url
    concurrency = 32
    rate_limits = { "*" = 100, "getTransaction" = 40 }      # requests/s; omit for unlimited
    [listen]
    networks = ["helium", "render"]
    since = "2026-01-01"                                    # or from_slot = 390000000
    checkpoint = "/var/lib/depinflow/listener.json"
    [kafka]
    bootstrap = "kafka:9092"
    topic_prefix = "depin"
    partitions = 6
    [metrics]
    port = 9464
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from infra.local.state import default_data_dir
from pipelines.settings import ConfigError, coerce_scalar, read_env, read_toml

_TOML_KEYS: dict[tuple[str, str], str] = {
    ("rpc", "url"): "rpc_url",
    ("rpc", "ws_url"): "ws_url",
    ("rpc", "concurrency"): "rpc_concurrency",
    ("rpc", "timeout"): "rpc_timeout",
    ("rpc", "batch"): "rpc_batch",
    ("rpc", "use_batches"): "rpc_use_batches",
    ("rpc", "rate_limits"): "rate_limits",
    ("rpc", "websocket"): "websocket",
    ("rpc", "ws_stall_timeout"): "ws_stall_timeout",
    ("listen", "networks"): "networks",
    ("listen", "since"): "since",
    ("listen", "from_slot"): "from_slot",
    ("listen", "checkpoint"): "checkpoint",
    ("listen", "follow"): "follow",
    ("listen", "mode"): "mode",
    ("listen", "fetch_concurrency"): "fetch_concurrency",
    ("listen", "workers"): "workers",
    ("listen", "windows_in_flight"): "windows_in_flight",
    ("listen", "page_limit"): "page_limit",
    ("listen", "sweep_interval"): "sweep_interval",
    ("listen", "finalize_interval"): "finalize_interval",
    ("listen", "checkpoint_interval"): "checkpoint_interval",
    ("listen", "shutdown_grace"): "shutdown_grace",
    ("listen", "publish_instructions"): "publish_instructions",
    ("listen", "prices"): "prices",
    ("listen", "progress"): "progress",
    ("listen", "addresses"): "extra_addresses",
    ("kafka", "bootstrap"): "bootstrap",
    ("kafka", "topic_prefix"): "topic_prefix",
    ("kafka", "partitions"): "partitions",
    ("kafka", "producer"): "producer_overrides",
    ("kafka", "client"): "kafka_client",
    ("metrics", "port"): "metrics_port",
    ("metrics", "host"): "metrics_host",
}
_OWN_SECTIONS = {"rpc", "listen"}

ENV_VARS: dict[str, str] = {
    "SOLANA_RPC_URL": "rpc_url",
    "SOLANA_WS_URL": "ws_url",
    "DEPINFLOW_NETWORKS": "networks",
    "DEPINFLOW_SINCE": "since",
    "DEPINFLOW_FROM_SLOT": "from_slot",
    "DEPINFLOW_LISTEN_MODE": "mode",
    "DEPINFLOW_CHECKPOINT": "checkpoint",
    "DEPINFLOW_KAFKA_BOOTSTRAP": "bootstrap",
    "DEPINFLOW_TOPIC_PREFIX": "topic_prefix",
    "DEPINFLOW_TOPIC_PARTITIONS": "partitions",
    "DEPINFLOW_RPC_CONCURRENCY": "rpc_concurrency",
    "DEPINFLOW_LISTEN_WORKERS": "workers",
    "DEPINFLOW_WS_STALL_TIMEOUT": "ws_stall_timeout",
    "DEPINFLOW_KAFKA_CLIENT": "kafka_client",
    "DEPINFLOW_LISTEN_METRICS_PORT": "metrics_port",
    "DEPINFLOW_METRICS_HOST": "metrics_host",
}


def _default_checkpoint() -> str:
    return str(default_data_dir() / "listener" / "checkpoint.json")


@dataclass
class ListenerConfig:
    rpc_url: str = "http://127.0.0.1:8899"
    ws_url: str | None = None             # None: derived from rpc_url (http->ws, https->wss)
    websocket: bool = True                # False: reconciliation sweeps only
    # no websocket frame for this long -> reconnect (the slot subscription sends one every ~400 ms, so
    # silence means a stalled stream behind an open TCP connection, e.g. a proxy that stopped forwarding)
    ws_stall_timeout: float = 10.0
    networks: list[str] = field(default_factory=lambda: ["helium", "render"])
    extra_addresses: list[str] = field(default_factory=list)
    since: str | None = None              # YYYY-MM-DD (UTC) lower bound of the backfill
    from_slot: int | None = None          # or a slot lower bound
    checkpoint: str = field(default_factory=_default_checkpoint)
    follow: bool = True                   # False: exit once caught up (backfill + tip, finalized)
    mode: str = "addresses"               # addresses (getSignaturesForAddress) | blocks (walk getBlock)
    bootstrap: str = "127.0.0.1:9092"
    topic_prefix: str = "depin"
    partitions: int = 3
    producer_overrides: dict[str, Any] = field(default_factory=dict)
    kafka_client: str = "auto"            # auto (confluent-kafka when installed) | confluent | kafka-python
    rpc_concurrency: int = 32
    rpc_timeout: float = 30.0
    rpc_batch: int = 100
    rpc_use_batches: bool = True
    rate_limits: dict[str, float] = field(default_factory=dict)
    fetch_concurrency: int = 8
    workers: int = 0                      # address-mode backfill in N worker processes (0: in-process)
    windows_in_flight: int = 8
    page_limit: int = 1000
    sweep_interval: float = 1.0
    finalize_interval: float = 0.4
    checkpoint_interval: float = 1.0
    # seconds a stop waits for Kafka to acknowledge what is in flight before giving up (exit code 3)
    shutdown_grace: float = 5.0
    publish_instructions: bool = True
    prices: str | None = None             # price file for USD values (see indexer.networks.prices)
    progress: str = "auto"                # auto (on a TTY) | on | off
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    log_level: str = "INFO"

    @classmethod
    def load(cls, path: str | Path | None = None, env: Mapping[str, str] | None = None,
             **overrides: Any) -> ListenerConfig:
        cfg = cls()
        if path:
            cfg = replace(cfg, **_from_toml(Path(path)))
        cfg = replace(cfg, **_from_env(os.environ if env is None else env))
        cfg = replace(cfg, **{k: _coerce(k, v) for k, v in overrides.items() if v is not None})
        cfg.validate()
        return cfg

    def validate(self) -> None:
        unknown = set(self.networks) - {"helium", "render"}
        if unknown or not self.networks:
            raise ConfigError(f"networks must be a non-empty subset of helium,render (got {self.networks})")
        if self.since is not None and self.from_slot is not None:
            raise ConfigError("give either since (a date) or from_slot, not both")
        if self.since is not None:
            since_timestamp(self.since)
        if self.partitions < 1 or self.rpc_concurrency < 1 or self.rpc_batch < 1 or self.page_limit < 1:
            raise ConfigError("partitions, rpc_concurrency, rpc_batch and page_limit must be >= 1")
        if self.mode not in ("addresses", "blocks"):
            raise ConfigError("mode must be addresses or blocks")
        if self.kafka_client not in ("auto", "confluent", "kafka-python"):
            raise ConfigError("kafka client must be auto, confluent or kafka-python")
        if not self.ws_stall_timeout > 0:
            raise ConfigError("ws_stall_timeout must be > 0 seconds")
        if self.shutdown_grace < 0:
            raise ConfigError("shutdown_grace must be >= 0 seconds")
        if self.progress not in ("auto", "on", "off"):
            raise ConfigError("progress must be auto, on or off")

    @property
    def effective_ws_url(self) -> str | None:
        if not self.websocket:
            return None
        if self.ws_url:
            return self.ws_url
        if self.rpc_url.startswith("https://"):
            return "wss://" + self.rpc_url[len("https://"):]
        if self.rpc_url.startswith("http://"):
            return "ws://" + self.rpc_url[len("http://"):]
        return None

    @property
    def since_ts(self) -> int | None:
        return since_timestamp(self.since) if self.since else None


def since_timestamp(day: str) -> int:
    try:
        return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())
    except ValueError as exc:
        raise ConfigError(f"since must be a date YYYY-MM-DD (UTC), got {day!r}") from exc


def _types() -> dict[str, Any]:
    return {f.name: f.type for f in fields(ListenerConfig)}


def _coerce(name: str, value: Any) -> Any:
    kinds = _types()
    if name not in kinds:
        raise ConfigError(f"unknown setting {name}")
    kind = kinds[name]
    try:
        done, converted = coerce_scalar(kind, value)
        if done:
            return converted
        if kind.startswith("list"):
            if isinstance(value, str):
                return [v.strip() for v in value.split(",") if v.strip()]
            return [str(v) for v in value]
        if kind.startswith("dict"):
            if isinstance(value, str):
                return _parse_pairs(value)
            if not isinstance(value, dict):
                raise TypeError("expected a table")
            return dict(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: {exc}") from None


def _parse_pairs(text: str) -> dict[str, float]:
    """`getTransaction=40,*=100` (env vars / CLI) -> {"getTransaction": 40.0, "*": 100.0}."""
    out: dict[str, float] = {}
    for part in text.split(","):
        if part.strip():
            key, _, value = part.partition("=")
            out[key.strip()] = float(value)
    return out


def _from_toml(path: Path) -> dict[str, Any]:
    # other services' settings ([sink], [clickhouse], unknown [kafka] keys) are ignored
    return read_toml(path, _TOML_KEYS, _coerce, own_sections=_OWN_SECTIONS)


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    return read_env(env, ENV_VARS, _coerce, skip_empty=True)
