"""The vocabulary every layer shares, defined once: status groups, account types, usage
frequencies, health labels, reject reasons, issue kinds, and the built-in metrics (name, rule
kind, column type, window). The config validates against it, the table registry
(`cs_pipeline/tables.py`) builds the metric columns from it, the pandera schemas check values
against it, and the SQL reads it through the macros of `sql_macros()`.

Adding a built-in metric: one `Metric` entry below (with `since`, the schema version that adds
its column), its SQL (the column in `metrics/sql/account_metrics.sql`, or the roll-up in
`rollups/sql/account_rollups.sql`) and a test; the migration that adds the column to existing
warehouses follows from `since` (`cs_pipeline/migrations.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MetricKind = Literal["number", "ordinal", "text"]

# --- status groups (docs/lifecycle.md#status-catalog) ------------------------------------------------------------
# The groups the status catalog (config `statuses:`) maps statuses to.
CATALOG_STATUS_GROUPS: tuple[str, ...] = ("Free", "Paying", "Canceled")
# The group of a status missing from the catalog, and of an account known only from events.
UNKNOWN_STATUS_GROUP = "Unknown"
STATUS_GROUPS: tuple[str, ...] = (*CATALOG_STATUS_GROUPS, UNKNOWN_STATUS_GROUP)
# The groups of live customers: scored for engagement and health (docs/health.md#who-is-scored); Canceled to
# one of them is a reactivation (docs/lifecycle.md#status-changes).
ACTIVE_STATUS_GROUPS: tuple[str, ...] = ("Free", "Paying")

ACCOUNT_TYPES: tuple[str, ...] = ("account", "product", "unknown")
USAGE_FREQUENCIES: tuple[str, ...] = ("Inactive", "Monthly", "Weekly", "Daily")  # ascending order
HEALTH_LABELS: tuple[str, ...] = ("Good", "Average", "Poor", "No value")
REJECT_REASONS: tuple[str, ...] = (
    "malformed_row", "bad_type", "field_too_long", "missing_account_id", "missing_action", "bad_timestamp",
    "future_timestamp", "module_limit", "action_limit",
)  # fmt: skip
ISSUE_KINDS: tuple[str, ...] = (
    "missing_id", "duplicate_id", "orphan_parent", "cycle", "invalid_value", "missing_product_code",
)  # fmt: skip

# The longest metric window (days): the daily aggregates a day's metrics read, and the
# largest `window:` of a custom metric.
LONGEST_WINDOW = 30


# --- built-in metrics (docs/metrics.md) ------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A built-in metric: a column of `table`, and a name rules may use."""

    name: str
    type: str  # the DuckDB column type, as information_schema spells it
    kind: MetricKind  # how rules compare it
    description: str
    window: int | None = None  # days of events it counts, ending on the metric's day
    nullable: bool = False
    table: Literal["account_metrics", "account_rollups"] = "account_metrics"
    since: int = 1  # the warehouse schema version that added its column

    @property
    def is_count(self) -> bool:
        """Whether the metric counts (BIGINT) rather than measures."""
        return self.type == "BIGINT"


def _active_users(days: int) -> Metric:
    return Metric(
        f"active_users_{days}d", "BIGINT", "number", f"distinct non-null user_id with events in the last {days} day(s)",
        window=days,
    )  # fmt: skip


USAGE_METRICS: tuple[Metric, ...] = (
    *(_active_users(days) for days in (1, 7, 14, 30)),
    Metric("events_14d", "BIGINT", "number", "events in the last 14 days", window=14),
    Metric("events_30d", "BIGINT", "number", "events in the last 30 days", window=30),
    Metric("active_days_14d", "BIGINT", "number", "days with at least one event in the last 14 days", window=14),
    Metric("active_days_30d", "BIGINT", "number", "days with at least one event in the last 30 days", window=30),
    Metric("modules_used_30d", "BIGINT", "number", "distinct non-null modules used in the last 30 days", window=30),
    Metric("actions_used_30d", "BIGINT", "number", "distinct actions used in the last 30 days", window=30),
    Metric(
        "usage_frequency",
        "VARCHAR",
        "ordinal",
        "Daily (active_days_14d >= 9), Weekly (>= 2), Monthly (active_days_30d >= 1) or Inactive",
        window=30,
    ),  # fmt: skip
    Metric(
        "engagement_score",
        "INTEGER",
        "number",
        "0-100: rank of the account's average daily events among its status's peers; "
        "null outside Free/Paying",
        window=14,
        nullable=True,
    ),  # fmt: skip
    Metric(
        "license_utilization",
        "DOUBLE",
        "number",
        "100 x active_users_30d / licenses; null without licenses > 0",
        window=30,
        nullable=True,
    ),  # fmt: skip
    Metric(
        "days_since_active_30d",
        "INTEGER",
        "number",
        "days from the account's last day with an event to D: 0 when active on D, 30 when no event "
        "in the last 30 days (null on rows written before schema version 3)",
        window=30,
        nullable=True,
        since=3,
    ),  # fmt: skip
    Metric("account_age_days", "INTEGER", "number", "the day minus create_date", nullable=True),
    Metric("days_to_renewal", "INTEGER", "number", "renewal_date minus the day", nullable=True),
)
ROLLUP_METRICS: tuple[Metric, ...] = tuple(
    Metric(name, type_, "number", description, window=window, nullable=nullable, table="account_rollups")
    for name, type_, description, window, nullable in (
        ("rollup_events_30d", "BIGINT", "events_30d summed over the subtree", 30, False),
        ("rollup_active_users_30d", "BIGINT", "distinct users active in the subtree in the last 30 days", 30, False),
        ("rollup_licenses", "DOUBLE", "licenses summed over the subtree (null when none has any)", None, True),
        ("rollup_contract_value", "DOUBLE", "contract_value summed over the subtree (null: none has one)", None, True),
        ("rollup_license_utilization", "DOUBLE", "100 x rollup_active_users_30d / rollup_licenses", 30, True),
    )
)  # fmt: skip
# Account columns of account_metrics that rules may use as they are, with their kind.
ACCOUNT_RULE_COLUMNS: dict[str, MetricKind] = {
    "licenses": "number",
    "contract_value": "number",
    "status": "text",
    "status_group": "text",
    "account_type": "text",
}
BUILTIN_METRICS: dict[str, MetricKind] = {
    **{m.name: m.kind for m in USAGE_METRICS + ROLLUP_METRICS},
    **ACCOUNT_RULE_COLUMNS,
}
# Fixed text columns only ever hold these values, so a rule on anything else is a typo.
TEXT_VALUES: dict[str, tuple[str, ...]] = {"status_group": STATUS_GROUPS, "account_type": ACCOUNT_TYPES}


# Bit sets grow in steps of this many bits, so that the sets of a 30-day window are mostly of
# one length and rarely need resizing to be OR-ed together.
BIT_SET_CHUNK = 512


def _sql_list(values: tuple[str, ...]) -> str:
    return ", ".join("'" + value.replace("'", "''") + "'" for value in values)


def sql_macros(catalog: str | None = None) -> str:
    """Macros that spell the vocabulary for the SQL files (created on every connection by
    warehouse.connect), so that no SQL file repeats a value list: temporary macros of the
    connection, or, given `catalog` (an attached writable database), macros of that catalog, which
    every connection of the database with it on its search path sees. They read no table: any
    connection may create them."""
    create = f"CREATE OR REPLACE MACRO {catalog}." if catalog else "CREATE OR REPLACE TEMP MACRO "
    return (
        f"{create}active_status_group(g) AS g IN ({_sql_list(ACTIVE_STATUS_GROUPS)});\n"
        f"{create}unknown_status_group() AS {_sql_list((UNKNOWN_STATUS_GROUP,))};\n"
        f"{create}health_labels() AS [{_sql_list(HEALTH_LABELS)}];\n"
        # bit sets of modules and actions (docs/data-model.md#bit-sets): the length of a set whose
        # highest number is n, and a set made `length` long (zeros added or dropped on the left)
        f"{create}bit_set_length(n) AS greatest(1, (coalesce(n, 0) + {BIT_SET_CHUNK - 1}) // {BIT_SET_CHUNK}) "
        f"* {BIT_SET_CHUNK};\n"
        f"{create}bit_set_resized(bits, length) AS CASE WHEN bit_length(bits) = length THEN bits "
        "WHEN bit_length(bits) < length THEN bitstring(bits, length::INTEGER) "
        "ELSE right(bits::VARCHAR, length::INTEGER)::BIT END;\n"
        # the set of a group's numbers `id` (an aggregate): bitstring_agg needs one length for every
        # group, `longest` (that of every number given), then each set is cut to its own
        f"{create}bit_set(id, longest) AS "
        "bit_set_resized(bitstring_agg(longest + 1 - id, 1, longest), bit_set_length(max(id)));\n"
    )
