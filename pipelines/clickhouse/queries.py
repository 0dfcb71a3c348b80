"""Read helpers over the views (deduplicated, retractions excluded)."""

from __future__ import annotations

from pipelines.clickhouse.migrate import check_identifier

TRUTH_KEYS = ("network", "day", "flow_class", "subtype", "mint")


def totals(client, database: str) -> list[dict]:
    """Lines in the ground-truth shape of flow_rules.md, sorted by (network, day, flow_class, subtype,
    mint): `{"network","day","flow_class","subtype","mint","amount_raw"}` with amount_raw an exact int.

    Read through `flows_daily` (FINAL, is_deleted = 0), so duplicates and retracted events never count.
    """
    db = check_identifier(database)
    rows = client.query(
        f"SELECT network, toString(day), flow_class, subtype, mint, toString(amount_raw) FROM {db}.flows_daily"
    ).result_rows
    lines = [dict(zip(TRUTH_KEYS, r[:5], strict=True)) | {"amount_raw": int(r[5])} for r in rows]
    lines.sort(key=lambda d: tuple(d[k] for k in TRUTH_KEYS))
    return lines


def table_counts(client, database: str, tables: tuple[str, ...] = (
        "usage_fees", "emissions", "other_flows", "instructions", "dead_letters")) -> dict[str, int]:
    """Deduplicated live row count per table (FINAL, without deleted rows)."""
    db = check_identifier(database)
    return {t: int(client.query(f"SELECT count() FROM {db}.{check_identifier(t)} FINAL WHERE is_deleted = 0")
                   .result_rows[0][0]) for t in tables}
