"""ClickHouse migrations: ordered `NNNN_name.sql` files, templated with `${db}` and friends.

Applied by `pipelines.clickhouse.migrate` (the sink on start, and `depinflow migrate`).
"""

from pathlib import Path

MIGRATIONS_DIR = Path(__file__).resolve().parent
