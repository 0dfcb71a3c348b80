"""Topic names and creation. Names follow DESIGN.md; the prefix is configurable per deployment."""

from __future__ import annotations

from dataclasses import dataclass

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError


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
