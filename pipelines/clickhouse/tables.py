"""Insert-side column specs of the tables the sink writes (must match schemas/clickhouse DDL).

Passing the types to clickhouse-connect avoids a DESCRIBE per insert, and a test compares these
lists with the live DDL so the two cannot drift apart. Columns with a DEFAULT the server computes
(`amount`, `inserted_at`) are not inserted.
"""

from __future__ import annotations

from dataclasses import dataclass

LC = "LowCardinality(String)"
TS = "DateTime64(3, 'UTC')"
USD = "Nullable(Decimal(38, 12))"


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[tuple[str, str], ...]

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def types(self) -> list[str]:
        return [t for _, t in self.columns]

    def index(self, column: str) -> int:
        return self.names.index(column)


FLOW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("event_id", "String"), ("signature", "String"), ("ix_path", LC), ("leg", "Nullable(UInt16)"),
    ("network", LC), ("flow_class", LC), ("subtype", LC), ("day", "Date"), ("block_time", TS),
    ("slot", "UInt64"), ("epoch", "Nullable(UInt64)"), ("program_id", LC), ("program", LC),
    ("instruction", LC), ("outer_program", LC), ("outer_instruction", LC), ("parent_instruction", LC),
    ("mint", LC), ("symbol", LC), ("decimals", "UInt8"), ("amount_raw", "UInt128"), ("usd", USD),
    ("usd_price", USD), ("payer_owner", "String"), ("payer_account", "String"),
    ("recipient_owner", "String"), ("recipient_account", "String"), ("sub_dao", LC),
    ("commitment", LC), ("reason", "String"), ("rule_version", LC), ("schema_version", LC),
    ("version", "UInt64"), ("is_deleted", "UInt8"),
)

USAGE_FEES = TableSpec("usage_fees", FLOW_COLUMNS)
EMISSIONS = TableSpec("emissions", FLOW_COLUMNS)
OTHER_FLOWS = TableSpec("other_flows", FLOW_COLUMNS)

INSTRUCTIONS = TableSpec("instructions", (
    ("event_id", "String"), ("signature", "String"), ("ix_path", LC), ("network", LC), ("day", "Date"),
    ("block_time", TS), ("slot", "UInt64"), ("program_id", LC), ("program", LC), ("instruction", LC),
    ("args", "String"), ("accounts", "String"), ("extra_accounts", "String"), ("outer_program", LC),
    ("outer_instruction", LC), ("parent_instruction", LC), ("tx_error", "Nullable(String)"),
    ("commitment", LC), ("schema_version", LC), ("version", "UInt64"), ("is_deleted", "UInt8"),
))

DEAD_LETTERS = TableSpec("dead_letters", (
    ("event_id", "String"), ("source", LC), ("network", LC), ("day", "Date"), ("time", TS),
    ("signature", "String"), ("slot", "UInt64"), ("ix_path", "String"), ("program_id", LC),
    ("program", LC), ("stage", LC), ("reason", "String"), ("detail", "String"), ("raw_hex", "String"),
    ("tx_error", "Nullable(String)"), ("commitment", LC), ("extra", "String"), ("topic", LC),
    ("partition", "UInt32"), ("offset", "UInt64"), ("version", "UInt64"), ("is_deleted", "UInt8"),
))

COMMITMENT_STATUS = TableSpec("commitment_status", (
    ("signature", "String"), ("slot", "UInt64"), ("status", LC), ("event_ids", "Array(String)"),
    ("block_time", TS), ("version", "UInt64"),
))

# flow_class -> table (DESIGN.md: usage and emissions kept apart, the rest together)
FLOW_TABLE_BY_CLASS = {"usage_fee": USAGE_FEES, "emission": EMISSIONS}
FLOW_TABLES = (USAGE_FEES, EMISSIONS, OTHER_FLOWS)
# table -> the flow classes it holds (the sink's JSON path checks each row against it)
FLOW_CLASSES_BY_TABLE: dict[str, tuple[str, ...]] = {
    "usage_fees": ("usage_fee",), "emissions": ("emission",),
    "other_flows": ("purchase", "reversal", "distribution", "transfer", "other"),
}
# tables whose rows follow the commitment of their transaction (status topic)
VERSIONED_TABLES = (USAGE_FEES, EMISSIONS, OTHER_FLOWS, INSTRUCTIONS)
ALL_TABLES = (USAGE_FEES, EMISSIONS, OTHER_FLOWS, INSTRUCTIONS, DEAD_LETTERS, COMMITMENT_STATUS)

# version = slot * 4 + rank: a later state of the same inclusion wins, and a re-inclusion of the
# transaction in a later slot (after a fork) wins over the retraction of the earlier one.
COMMITMENT_RANK = {"confirmed": 1, "finalized": 2, "retracted": 3}


def row_version(slot: int, state: str) -> int:
    return slot * 4 + COMMITMENT_RANK[state]


def flow_table(flow_class: str) -> TableSpec:
    return FLOW_TABLE_BY_CLASS.get(flow_class, OTHER_FLOWS)
