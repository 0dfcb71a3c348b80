"""Topic names and creation. Names follow DESIGN.md; the prefix is configurable per deployment."""

from __future__ import annotations

from dataclasses import dataclass

from pipelines.kafka.client import BrokerUnavailable

# kafka-python and confluent-kafka are imported inside the functions: a process uses one of them, and
# kafka-python alone costs ~0.3 CPU-s to import (see pipelines.kafka.client).


@dataclass(frozen=True)
class Topics:
    prefix: str = "depin"

    @property
    def flows(self) -> str:
        return f"{self.prefix}.flows.v1"

    @property
    def instructions(self) -> str:
        return f"{self.prefix}.instructions.v1"

    @property
    def deadletter(self) -> str:
        return f"{self.prefix}.deadletter.v1"

    @property
    def status(self) -> str:
        return f"{self.prefix}.status.v1"

    def all(self) -> list[str]:
        return [self.flows, self.instructions, self.deadletter, self.status]


def ensure_topics(bootstrap: str, names: list[str], partitions: int = 3, replication: int = 1) -> list[str]:
    """Create the topics that do not exist yet; returns the ones created.

    Existing topics are detected with a consumer's metadata (tansu's admin describe/list calls fail),
    and a concurrent creator's TopicAlreadyExistsError is treated as success.
    """
    from kafka import KafkaConsumer
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    probe = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        existing = probe.topics()
    finally:
        probe.close()
    missing = [n for n in names if n not in existing]
    if not missing:
        return []
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    created = []
    try:
        for name in missing:
            try:
                admin.create_topics([NewTopic(name, partitions, replication)])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
    return created


def ensure_topics_confluent(bootstrap: str, names: list[str], partitions: int = 3, replication: int = 1,
                            timeout: float = 5.0) -> list[str]:
    """`ensure_topics` through confluent-kafka's AdminClient: same result, without importing kafka-python.

    WHY: a listener that produces with confluent-kafka needed kafka-python only for this check, and
    importing it was ~0.3 of its ~0.9 CPU-s start-up. Existing topics come from one metadata request
    (tansu answers it; its admin list/describe calls are what fail), a concurrent creator's
    TOPIC_ALREADY_EXISTS counts as success. No broker answering within `timeout` s raises
    BrokerUnavailable, which until_broker_reachable waits out, as it does kafka-python's NoBrokersAvailable.
    """
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    # no stderr line per refused connection while the broker is down (the caller logs the wait)
    admin = AdminClient({"bootstrap.servers": bootstrap, "log.connection.close": False, "log_level": 0})
    try:
        existing = admin.list_topics(timeout=timeout).topics
    except KafkaException as exc:
        raise BrokerUnavailable(f"{bootstrap}: {exc}") from exc
    missing = [n for n in names if n not in existing]
    if not missing:
        return []
    created = []
    futures = admin.create_topics([NewTopic(n, partitions, replication) for n in missing],
                                  operation_timeout=timeout, request_timeout=timeout)
    for name in missing:
        try:
            futures[name].result()
            created.append(name)
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if not (isinstance(err, KafkaError) and err.code() == KafkaError.TOPIC_ALREADY_EXISTS):
                raise
    return created
