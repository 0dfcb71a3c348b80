"""Read-only SQL against the running service's embedded ClickHouse (ClickHouse HTTP protocol)."""

from pipelines.query.server import QueryEndpoint, read_endpoint_file, start_query_endpoint

__all__ = ["QueryEndpoint", "read_endpoint_file", "start_query_endpoint"]
