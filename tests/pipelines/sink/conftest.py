"""Fixtures: fresh topics + a fresh ClickHouse database per test, and a sink factory bound to both."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from pipelines.kafka.topics import Topics, ensure_topics
from pipelines.sink import Sink, SinkConfig
from tests.pipelines.sink.helpers import Publisher


@dataclass
class SinkEnv:
    bootstrap: str
    dsn: str
    database: str
    topics: Topics
    publisher: Publisher
    client: object

    def config(self, group: str, **overrides) -> SinkConfig:
        settings = dict(bootstrap=self.bootstrap, clickhouse_dsn=self.dsn, database=self.database,
                        topic_prefix=self.topics.prefix, group_id=group, batch_seconds=0.3,
                        retry_initial_seconds=0.05, retry_max_seconds=0.4, poll_timeout_ms=100,
                        # the tests' batches are small: keep them on the JSON paths they test (the
                        # small-batch exact routing has its own tests, test_live_flush.py)
                        json_min_rows=1)
        settings.update(overrides)
        return SinkConfig(**settings)

    def sink(self, group: str = "sink", **overrides) -> Sink:
        return Sink(self.config(group, **overrides))

    def q(self, sql: str) -> list[tuple]:
        return self.client.query(sql.replace("{db}", self.database)).result_rows


@pytest.fixture
def sink_env(bootstrap, ch_dsn, ch_client, ch_database, unique_name) -> Iterator[SinkEnv]:
    topics = Topics(unique_name("sk"))
    ensure_topics(bootstrap, topics.all(), partitions=3)
    pub = Publisher(bootstrap, topics)
    yield SinkEnv(bootstrap, ch_dsn, ch_database, topics, pub, ch_client)
    pub.close()
