"""Pandera (polars) schemas of the public tables: validated inside the assets before they
write, and again on the stored tables by blocking asset checks."""

from __future__ import annotations

import pandera.polars as pa
import polars as pl

from cs_pipeline.config import USAGE_FREQUENCIES


def _row_check(name: str, holds: pl.Expr) -> pa.Check:
    """A check that `holds` is true on every row."""
    return pa.Check(lambda data: data.lazyframe.select(holds), name=name)


ACCOUNT_TYPES = ["account", "product", "unknown"]
STATUS_GROUPS = ["Free", "Paying", "Canceled", "Unknown"]
REJECT_REASONS = [
    "malformed_row", "bad_type", "field_too_long", "missing_account_id", "missing_action", "bad_timestamp",
    "future_timestamp", "module_limit", "action_limit",
]  # fmt: skip
ISSUE_KINDS = ["missing_id", "duplicate_id", "orphan_parent", "cycle", "invalid_value", "missing_product_code"]

accounts = pa.DataFrameSchema(
    {
        "account_id": pa.Column(pl.String, unique=True),
        "name": pa.Column(pl.String, nullable=True),
        "parent_id": pa.Column(pl.String, nullable=True),
        "root_id": pa.Column(pl.String),
        "depth": pa.Column(pl.Int32, pa.Check.ge(0)),
        "path": pa.Column(pl.List(pl.String)),
        "account_type": pa.Column(pl.String, pa.Check.isin(ACCOUNT_TYPES)),
        "product_key": pa.Column(pl.String, nullable=True),
        "status": pa.Column(pl.String, nullable=True),
        "status_group": pa.Column(pl.String, pa.Check.isin(STATUS_GROUPS)),
        "create_date": pa.Column(pl.Date, nullable=True),
        "contract_value": pa.Column(pl.Float64, nullable=True),
        "renewal_date": pa.Column(pl.Date, nullable=True),
        "licenses": pa.Column(pl.Float64, nullable=True),
        "attributes": pa.Column(nullable=True),
    },
    checks=[
        # a root is its own root at depth 0; the path runs from the root to the account
        _row_check("roots_at_depth_0", (pl.col("parent_id").is_null() == (pl.col("depth") == 0))),
        _row_check("path_length_is_depth_plus_1", pl.col("path").list.len() == pl.col("depth") + 1),
        _row_check("path_ends_at_account", pl.col("path").list.last() == pl.col("account_id")),
        _row_check("path_starts_at_root", pl.col("path").list.first() == pl.col("root_id")),
    ],
    name="accounts",
)

hierarchy_issues = pa.DataFrameSchema(
    {
        "account_id": pa.Column(pl.String, nullable=True),
        "issue": pa.Column(pl.String, pa.Check.isin(ISSUE_KINDS)),
        "detail": pa.Column(pl.String),
    },
    name="hierarchy_issues",
)

users = pa.DataFrameSchema(
    {
        "account_id": pa.Column(pl.String),
        "user_id": pa.Column(pl.String),
        "name": pa.Column(pl.String, nullable=True),
        "first_seen": pa.Column(pl.Date, nullable=True),
        "last_seen": pa.Column(pl.Date, nullable=True),
    },
    checks=[_row_check("first_seen_before_last_seen", (pl.col("first_seen") <= pl.col("last_seen")).fill_null(True))],
    unique=["account_id", "user_id"],
    name="users",
)

usage_events = pa.DataFrameSchema(
    {
        "event_id": pa.Column(pl.String, unique=True),
        "ts": pa.Column(pl.Datetime("us", "UTC")),
        "event_date": pa.Column(pl.Date),
        "account_id": pa.Column(pl.String),
        "user_id": pa.Column(pl.String, nullable=True),
        "module": pa.Column(pl.String, nullable=True),
        "action": pa.Column(pl.String),
        "partition_date": pa.Column(pl.Date),
        "source_file": pa.Column(pl.String),
        "source_row": pa.Column(pl.Int64, pa.Check.ge(1)),
    },
    checks=[
        _row_check("not_in_future", pl.col("event_date") <= pl.col("partition_date").dt.offset_by("1d")),
        _row_check("event_date_is_utc_date_of_ts", pl.col("ts").dt.date() == pl.col("event_date")),
    ],
    name="usage_events",
)

rejected_events = pa.DataFrameSchema(
    {
        "partition_date": pa.Column(pl.Date),
        "source_file": pa.Column(pl.String),
        "source_row": pa.Column(pl.Int64, nullable=True),
        "reason": pa.Column(pl.String, pa.Check.isin(REJECT_REASONS)),
        "raw": pa.Column(pl.String, nullable=True),
    },
    name="rejected_events",
)


HEALTH_LABELS = ["Good", "Average", "Poor", "No value"]
_COUNT = pa.Check.ge(0)


def _ordered(*columns: str) -> pa.Check:
    """Counts over nested windows never decrease as the window grows."""
    holds = pl.all_horizontal(pl.col(a) <= pl.col(b) for a, b in zip(columns, columns[1:]))
    return _row_check(f"{' <= '.join(columns)}", holds)


account_metrics = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "account_id": pa.Column(pl.String, unique=True),
        "account_type": pa.Column(pl.String, pa.Check.isin(ACCOUNT_TYPES)),
        "status_group": pa.Column(pl.String, pa.Check.isin(STATUS_GROUPS)),
        **{
            name: pa.Column(pl.Int64, _COUNT)
            for name in (
                "active_users_1d",
                "active_users_7d",
                "active_users_14d",
                "active_users_30d",
                "events_14d",
                "events_30d",
                "modules_used_30d",
                "actions_used_30d",
            )
        },  # fmt: skip
        "active_days_14d": pa.Column(pl.Int64, pa.Check.in_range(0, 14)),
        "active_days_30d": pa.Column(pl.Int64, pa.Check.in_range(0, 30)),
        "usage_frequency": pa.Column(pl.String, pa.Check.isin(list(USAGE_FREQUENCIES))),
        "engagement_score": pa.Column(pl.Int32, pa.Check.in_range(0, 100), nullable=True),
        "license_utilization": pa.Column(pl.Float64, _COUNT, nullable=True),
        "account_age_days": pa.Column(pl.Int32, nullable=True),
        "days_to_renewal": pa.Column(pl.Int32, nullable=True),
    },
    checks=[
        _ordered("active_users_1d", "active_users_7d", "active_users_14d", "active_users_30d"),
        _ordered("events_14d", "events_30d"),
        _ordered("active_days_14d", "active_days_30d", "events_30d"),
        # engagement is scored for Free/Paying accounts only (SPEC 4.2)
        _row_check(
            "engagement_only_for_free_and_paying",
            pl.col("engagement_score").is_null() != pl.col("status_group").is_in(["Free", "Paying"]),
        ),
    ],
    name="account_metrics",
)

account_health = pa.DataFrameSchema(
    {
        "date": pa.Column(pl.Date),
        "account_id": pa.Column(pl.String, unique=True),
        "profile": pa.Column(pl.String),
        "health": pa.Column(pl.String, pa.Check.isin(HEALTH_LABELS)),
        "health_score": pa.Column(pl.Int32, pa.Check.in_range(0, 100), nullable=True),
        "reasons": pa.Column(pl.List(pl.String)),
        "previous_health": pa.Column(pl.String, pa.Check.isin(HEALTH_LABELS), nullable=True),
    },
    checks=[
        _row_check("no_score_for_no_value", (pl.col("health") != "No value") | pl.col("health_score").is_null()),
    ],
    name="account_health",
)


def failures(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame | None:
    """The failure cases of validating `frame` (None when it is valid)."""
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return exc.failure_cases.select("schema_context", "column", "check", "failure_case")
    return None


def summarise_failures(found: pl.DataFrame) -> pl.DataFrame:
    """One row per failing (column, check): how many rows fail and one example."""
    return (
        found.group_by("column", "check")
        .agg(pl.len().alias("rows"), pl.first("failure_case").cast(pl.String))
        .sort("column", "check")
    )


class SchemaViolation(ValueError):
    """Rows about to be written break the table's schema: names the table and the checks."""


def validate(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> None:
    found = failures(schema, frame)
    if found is not None:
        lines = [
            f"  {row['column']}: {row['check']} fails for {row['rows']} row(s), e.g. {row['failure_case']!r}"
            for row in summarise_failures(found).iter_rows(named=True)
        ]
        raise SchemaViolation(f"rows for table {schema.name} break its schema:\n" + "\n".join(lines))
