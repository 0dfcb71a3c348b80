"""Kafka -> ClickHouse sink: `Sink(SinkConfig(...)).run(stop_event)` / `.run_until_idle()`."""

from pipelines.clickhouse.queries import totals
from pipelines.sink.config import SinkConfig
from pipelines.sink.service import Sink, SinkStats

__all__ = ["Sink", "SinkConfig", "SinkStats", "totals"]
