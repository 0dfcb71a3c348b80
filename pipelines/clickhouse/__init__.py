"""ClickHouse access for the pipelines: migrations, table specs, and read helpers."""
