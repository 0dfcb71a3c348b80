"""Shared fixtures: one real tansu broker per test session, one embedded ClickHouse per session,
fresh topics and databases per test so tests never see each other's data."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.local.broker import LocalBroker
from infra.local.clickhouse import chdb_dsn, get_client
from pipelines.kafka.topics import ensure_topics


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    """A real Kafka-protocol broker (tansu, memory storage) for the whole session."""
    b = LocalBroker(tmp_path_factory.mktemp("broker"))
    b.start()
    yield b
    b.stop()


@pytest.fixture(scope="session")
def bootstrap(broker: LocalBroker) -> str:
    return broker.bootstrap


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    def make(prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:10]}"
    return make


@pytest.fixture
def topic_factory(bootstrap: str, unique_name) -> Callable[..., str]:
    """Create a fresh topic (default 3 partitions) and return its name."""
    def make(prefix: str = "t", partitions: int = 3) -> str:
        name = unique_name(prefix)
        ensure_topics(bootstrap, [name], partitions=partitions)
        return name
    return make


@pytest.fixture(scope="session")
def ch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clickhouse")


@pytest.fixture(scope="session")
def ch_dsn(ch_dir: Path) -> str:
    return chdb_dsn(ch_dir)


@pytest.fixture(scope="session")
def ch_client(ch_dsn: str):
    """The embedded ClickHouse engine (chdb) shared by the session (one per process)."""
    return get_client(ch_dsn)


@pytest.fixture
def ch_database(ch_client, unique_name) -> Iterator[str]:
    """A fresh ClickHouse database for one test, dropped afterwards."""
    name = unique_name("db")
    ch_client.command(f"CREATE DATABASE {name}")
    yield name
    ch_client.command(f"DROP DATABASE IF EXISTS {name} SYNC")
