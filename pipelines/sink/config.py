"""Sink settings: defaults < TOML file < environment variables < explicit overrides (CLI flags).

Why this order: a deployment ships one config file, operators adjust single values per host or
container with env vars, and a flag on the command line wins for a one-off run.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from infra.local.clickhouse import chdb_dsn
from infra.local.state import default_data_dir
from pipelines.settings import ConfigError, coerce_scalar, read_env, read_toml

# (section, key in the TOML file) -> field
_TOML_KEYS: dict[tuple[str, str], str] = {
    ("kafka", "bootstrap"): "bootstrap",
    ("kafka", "topic_prefix"): "topic_prefix",
    ("kafka", "group_id"): "group_id",
    ("kafka", "client_id"): "client_id",
    ("kafka", "consumer"): "consumer_overrides",
    ("kafka", "confluent"): "confluent_overrides",
    ("kafka", "client"): "kafka_client",
    ("kafka", "assignment"): "assignment",
    ("clickhouse", "dsn"): "clickhouse_dsn",
    ("clickhouse", "database"): "database",
    ("clickhouse", "cluster"): "cluster",
    ("sink", "batch_rows"): "batch_rows",
    ("sink", "batch_seconds"): "batch_seconds",
    ("sink", "max_poll_records"): "max_poll_records",
    ("sink", "poll_timeout_ms"): "poll_timeout_ms",
    ("sink", "retry_initial_seconds"): "retry_initial_seconds",
    ("sink", "retry_max_seconds"): "retry_max_seconds",
    ("sink", "migrate"): "migrate",
    ("sink", "json_flows"): "json_flows",
    ("sink", "json_min_rows"): "json_min_rows",
    ("sink", "reconcile_seconds"): "reconcile_seconds",
    ("sink", "bulk_rate"): "bulk_rate",
    ("metrics", "port"): "metrics_port",
    ("metrics", "host"): "metrics_host",
}

ENV_VARS: dict[str, str] = {
    "DEPINFLOW_KAFKA_BOOTSTRAP": "bootstrap",
    "DEPINFLOW_TOPIC_PREFIX": "topic_prefix",
    "DEPINFLOW_SINK_GROUP": "group_id",
    "DEPINFLOW_SINK_KAFKA_CLIENT": "kafka_client",
    "DEPINFLOW_SINK_ASSIGNMENT": "assignment",
    "DEPINFLOW_CLICKHOUSE_DSN": "clickhouse_dsn",
    "DEPINFLOW_CLICKHOUSE_DATABASE": "database",
    "DEPINFLOW_CLICKHOUSE_CLUSTER": "cluster",
    "DEPINFLOW_SINK_BATCH_ROWS": "batch_rows",
    "DEPINFLOW_SINK_BATCH_SECONDS": "batch_seconds",
    "DEPINFLOW_SINK_MIGRATE": "migrate",
    "DEPINFLOW_SINK_JSON_MIN_ROWS": "json_min_rows",
    "DEPINFLOW_SINK_RECONCILE_SECONDS": "reconcile_seconds",
    "DEPINFLOW_SINK_BULK_RATE": "bulk_rate",
    "DEPINFLOW_METRICS_PORT": "metrics_port",
    "DEPINFLOW_METRICS_HOST": "metrics_host",
}


def _default_dsn() -> str:
    return chdb_dsn(default_data_dir() / "clickhouse")


@dataclass
class SinkConfig:
    bootstrap: str = "127.0.0.1:9092"
    clickhouse_dsn: str = field(default_factory=_default_dsn)
    database: str = "depinflow"
    cluster: str | None = None            # issue 8: Replicated* DDL ON CLUSTER when set
    topic_prefix: str = "depin"
    group_id: str = "depinflow-sink"
    client_id: str = "depinflow-sink"
    batch_rows: int = 50_000              # flush when this many rows are buffered ...
    batch_seconds: float = 1.0            # ... or when the oldest buffered row is this old
    max_poll_records: int = 10_000
    poll_timeout_ms: int = 200
    # while the next batch waits for the writer, a write may leave its commitment reconciliation to a
    # later one, for at most this long (its offsets are committed only once reconciled; Sink._reconcile_or_carry)
    reconcile_seconds: float = 1.0
    # messages/s from which a caught-up sink still batches, by batch_rows or BULK_BATCH_SECONDS (a backfill
    # streaming in: fewer, larger writes), instead of writing at once; 0: always write at once (sink/inflow.py)
    bulk_rate: float = 2000.0
    retry_initial_seconds: float = 0.5    # ClickHouse down: exponential backoff from here ...
    retry_max_seconds: float = 30.0       # ... up to here, forever (nothing is committed meanwhile)
    migrate: bool = True                  # apply schemas/clickhouse migrations on start
    json_flows: bool = True               # embedded engine: ClickHouse parses flow JSON (sink/jsonflows.py)
    #                                       and instruction records (sink/jsoninstructions.py) ...
    json_min_rows: int = 1000             # ... for a table's records in a batch from this many on; fewer
    #                                       take the exact path, cheaper there (Sink._write_json)
    metrics_port: int | None = None       # Prometheus /metrics; None = no HTTP server
    metrics_host: str = "127.0.0.1"
    # kafka-python by default: with confluent-kafka (2x less CPU per row) the consumer group never got its
    # partitions back after tansu broker kills in the crash suite (tests/chaos/test_crash.py, 2026-11-26);
    # confluent | auto (confluent when installed) are opt-in until that is understood.
    kafka_client: str = "kafka-python"
    # group: the group coordinator shares partitions among sinks (scale out); manual: this one sink reads
    # every partition, committing under group_id, with no group join (sink/consumer.py's module doc)
    assignment: str = "group"
    consumer_overrides: dict[str, Any] = field(default_factory=dict)   # kafka-python settings (snake_case)
    confluent_overrides: dict[str, Any] = field(default_factory=dict)  # librdkafka settings (dotted names)

    @classmethod
    def load(cls, path: str | Path | None = None, env: Mapping[str, str] | None = None,
             **overrides: Any) -> SinkConfig:
        cfg = cls()
        if path:
            cfg = replace(cfg, **_from_toml(Path(path)))
        cfg = replace(cfg, **_from_env(os.environ if env is None else env))
        return replace(cfg, **{k: v for k, v in overrides.items() if v is not None})

    def __post_init__(self) -> None:
        if self.batch_rows < 1 or self.batch_seconds <= 0:
            raise ConfigError("batch_rows must be >= 1 and batch_seconds > 0")
        if self.json_min_rows < 0:
            raise ConfigError("json_min_rows must be >= 0")
        if self.reconcile_seconds < 0:
            raise ConfigError("reconcile_seconds must be >= 0")
        if self.bulk_rate < 0:
            raise ConfigError("bulk_rate must be >= 0")
        if self.kafka_client not in ("auto", "confluent", "kafka-python"):
            raise ConfigError("kafka client must be auto, confluent or kafka-python")
        if self.assignment not in ("group", "manual"):
            raise ConfigError("assignment must be group or manual")


def _types() -> dict[str, Any]:
    return {f.name: f.type for f in fields(SinkConfig)}


def _coerce(name: str, value: Any) -> Any:
    kind = _types()[name]
    try:
        done, converted = coerce_scalar(kind, value)
        if done:
            return converted
        if kind.startswith("dict"):
            if not isinstance(value, dict):
                raise TypeError("expected a table")
            return dict(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name}: {exc}") from None


def _from_toml(path: Path) -> dict[str, Any]:
    return read_toml(path, _TOML_KEYS, _coerce)


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    return read_env(env, ENV_VARS, _coerce)
