"""Moved to `pipelines.logs` (shared by every service entry point; importing it through the sink package
pulled the ClickHouse client and kafka-python into `depinflow listen`). Kept so existing imports work."""

from pipelines.logs import configure_json_logging

__all__ = ["configure_json_logging"]
