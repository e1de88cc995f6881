"""Pandera (polars) schemas of the public tables: validated inside the assets before they
write, and again on the stored tables by blocking asset checks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandera.polars as pa
import polars as pl

from cs_pipeline.tables import TABLES
from cs_pipeline.vocabulary import (
    ACCOUNT_TYPES,
    ACTIVE_STATUS_GROUPS,
    HEALTH_LABELS,
    ISSUE_KINDS,
    REJECT_REASONS,
    STATUS_GROUPS,
    USAGE_FREQUENCIES,
    USAGE_METRICS,
)

__all__ = ["ACCOUNT_TYPES", "HEALTH_LABELS", "ISSUE_KINDS", "REJECT_REASONS", "STATUS_GROUPS"]

# The Polars type a column of each DuckDB type reads as (query_frame). A MAP column reads as a
# list of key/value structs, which the schema checks leave out (assets_common/schema_checks.py):
# it has no dtype here and may be absent from the frame.
POLARS_TYPES: dict[str, pl.DataType] = {
    "VARCHAR": pl.String(),
    "JSON": pl.String(),  # read as ::VARCHAR
    "DATE": pl.Date(),
    "INTEGER": pl.Int32(),
    "BIGINT": pl.Int64(),
    "DOUBLE": pl.Float64(),
    "VARCHAR[]": pl.List(pl.String),
    "TIMESTAMP WITH TIME ZONE": pl.Datetime("us", "UTC"),
}


def _row_check(name: str, holds: pl.Expr) -> pa.Check:
    """A check that `holds` is true on every row (kept in its statistics for `certainly_valid`)."""
    return pa.Check(lambda data: data.lazyframe.select(holds), name=name, statistics={"holds": holds})


def table_schema(
    table: str,
    checks: Mapping[str, pa.Check | Sequence[pa.Check]] = {},  # noqa: B006 - read only
    *,
    rows: Sequence[pa.Check] = (),
    not_null: Sequence[str] = (),
) -> pa.DataFrameSchema:
    """The pandera schema of a registry table (run_id aside): every column with its type and
    nullability from the registry (`not_null`: columns the table admits null in but whose
    stored rows must not hold any), the value `checks` per column and the `rows` checks; the
    key, less the partition columns a checked slice holds one value of, must be unique."""
    registered = TABLES[table]
    unique = [name for name in registered.key if name not in registered.partition]
    columns = {}
    for column in registered.ordered():
        if column.name == "run_id":
            continue
        given = checks.get(column.name, [])
        dtype = POLARS_TYPES.get(column.type)
        columns[column.name] = pa.Column(
            dtype,
            [given] if isinstance(given, pa.Check) else list(given),
            nullable=column.nullable and column.name not in not_null,
            unique=unique == [column.name],
            required=dtype is not None,
        )
    return pa.DataFrameSchema(columns, checks=list(rows), unique=unique if len(unique) > 1 else None, name=table)


_IN_ACCOUNT_TYPES = pa.Check.isin(ACCOUNT_TYPES)
_IN_STATUS_GROUPS = pa.Check.isin(STATUS_GROUPS)

accounts = table_schema(
    "accounts",
    {
        "depth": pa.Check.ge(0),
        "account_type": _IN_ACCOUNT_TYPES,
        "status_group": _IN_STATUS_GROUPS,
    },
    rows=[
        # a root is its own root at depth 0; the path runs from the root to the account
        _row_check("roots_at_depth_0", (pl.col("parent_id").is_null() == (pl.col("depth") == 0))),
        _row_check("path_length_is_depth_plus_1", pl.col("path").list.len() == pl.col("depth") + 1),
        _row_check("path_ends_at_account", pl.col("path").list.last() == pl.col("account_id")),
        _row_check("path_starts_at_root", pl.col("path").list.first() == pl.col("root_id")),
    ],
)

# detail may be null in the warehouse, but every issue the pipeline writes says what it found
hierarchy_issues = table_schema("hierarchy_issues", {"issue": pa.Check.isin(ISSUE_KINDS)}, not_null=["detail"])

users = table_schema(
    "users",
    rows=[_row_check("first_seen_before_last_seen", (pl.col("first_seen") <= pl.col("last_seen")).fill_null(True))],
)

usage_events = table_schema(
    "usage_events",
    {"source_row": pa.Check.ge(1)},
    rows=[
        _row_check("not_in_future", pl.col("event_date") <= pl.col("partition_date").dt.offset_by("1d")),
        _row_check("event_date_is_utc_date_of_ts", pl.col("ts").dt.date() == pl.col("event_date")),
    ],
)

rejected_events = table_schema("rejected_events", {"reason": pa.Check.isin(REJECT_REASONS)})


_COUNT = pa.Check.ge(0)


def _ordered(*columns: str) -> pa.Check:
    """Counts over nested windows never decrease as the window grows."""
    holds = pl.all_horizontal(pl.col(a) <= pl.col(b) for a, b in zip(columns, columns[1:]))
    return _row_check(f"{' <= '.join(columns)}", holds)


account_metrics = table_schema(
    "account_metrics",
    {
        "account_type": _IN_ACCOUNT_TYPES,
        "status_group": _IN_STATUS_GROUPS,
        **{m.name: _COUNT for m in USAGE_METRICS if m.is_count},
        "active_days_14d": pa.Check.in_range(0, 14),
        "active_days_30d": pa.Check.in_range(0, 30),
        "days_since_active_30d": pa.Check.in_range(0, 30),
        "usage_frequency": pa.Check.isin(USAGE_FREQUENCIES),
        "engagement_score": pa.Check.in_range(0, 100),
        "license_utilization": _COUNT,
    },
    rows=[
        _ordered("active_users_1d", "active_users_7d", "active_users_14d", "active_users_30d"),
        _ordered("events_14d", "events_30d"),
        _ordered("active_days_14d", "active_days_30d", "events_30d"),
        # engagement is scored for Free/Paying accounts only (docs/metrics.md#engagement-score)
        _row_check(
            "engagement_only_for_free_and_paying",
            pl.col("engagement_score").is_null() != pl.col("status_group").is_in(ACTIVE_STATUS_GROUPS),
        ),
    ],
)

account_health = table_schema(
    "account_health",
    {
        "health": pa.Check.isin(HEALTH_LABELS),
        "health_score": pa.Check.in_range(0, 100),
        "previous_health": pa.Check.isin(HEALTH_LABELS),
    },
    rows=[
        _row_check("no_score_for_no_value", (pl.col("health") != "No value") | pl.col("health_score").is_null()),
    ],
)


def failures(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> pl.DataFrame | None:
    """The failure cases of validating `frame` (None when it is valid). A frame that
    `certainly_valid` passes is valid without pandera; any other is validated by pandera, which
    finds what fails."""
    if certainly_valid(schema, frame):
        return None
    try:
        schema.validate(frame, lazy=True)
    except pa.errors.SchemaErrors as exc:
        return exc.failure_cases.select("schema_context", "column", "check", "failure_case")
    return None


def certainly_valid(schema: pa.DataFrameSchema, frame: pl.DataFrame) -> bool:
    """True when pandera would pass `frame`: every rule of the schema evaluated in one Polars
    query, each at least as strict as pandera's own. Pandera runs a query per rule and column
    (about 40 for account_metrics) at a fixed cost each, whatever the rows: most of a day's schema
    checks on a small tenant. False when a rule fails or the schema uses something not judged
    here (pandera then validates)."""
    if schema.strict or schema.ordered or schema.coerce or schema.parsers or schema.dtype is not None:
        return False
    holds: list[pl.Expr | None] = []
    for name, column in schema.columns.items():
        found = _column_holds(name, column, frame)
        if found is None:
            return False
        holds += found
    if schema.unique:
        holds.append(pl.struct(schema.unique).is_duplicated().not_().all())
    holds += [_check_holds(check, None) for check in schema.checks]
    if any(held is None for held in holds):
        return False
    try:
        return not holds or all(frame.select(*(held.alias(str(n)) for n, held in enumerate(holds))).row(0))
    except pl.exceptions.PolarsError:  # a rule that cannot run on these rows: pandera says why
        return False


def _column_holds(name: str, column: pa.Column, frame: pl.DataFrame) -> list[pl.Expr | None] | None:
    """The expressions of `certainly_valid` for one column; None when it fails before any query
    (absent while required, another type) or uses what is not judged here."""
    if column.regex or column.coerce or column.parsers or column.default is not None:
        return None
    if name not in frame.schema:
        return None if column.required else []
    if column.dtype is not None and frame.schema[name] != column.dtype.type:
        return None
    holds: list[pl.Expr | None] = []
    if not column.nullable:
        holds.append(pl.col(name).is_not_null().all())
        if frame.schema[name] in (pl.Float32, pl.Float64):  # pandera counts NaN as null
            holds.append(pl.col(name).is_not_nan().all())
    if column.unique:
        holds.append(pl.col(name).is_duplicated().not_().all())
    return holds + [_check_holds(check, pl.col(name)) for check in column.checks]


def _check_holds(check: pa.Check, column: pl.Expr | None) -> pl.Expr | None:
    """An expression true when `check` passes on every row of `column` (None: a row check of
    the frame, `_row_check`), as pandera's builtin check computes it; None for a check not judged
    here. A null outcome passes where pandera ignores nulls (`ignore_na`, its default)."""
    if check.element_wise or check.groupby or check.raise_warning:
        return None
    found = check.statistics
    if column is None:
        outcome = found.get("holds") if set(found) == {"holds"} else None
    elif check.name == "greater_than_or_equal_to" and set(found) == {"min_value"}:
        outcome = column.ge(found["min_value"])
    elif check.name == "in_range" and set(found) == {"min_value", "max_value", "include_min", "include_max"}:
        low = column.ge(found["min_value"]) if found["include_min"] else column.gt(found["min_value"])
        high = column.le(found["max_value"]) if found["include_max"] else column.lt(found["max_value"])
        outcome = low.and_(high)
    elif check.name == "isin" and set(found) == {"allowed_values"}:
        outcome = column.is_in(found["allowed_values"])
    else:
        outcome = None
    if outcome is None:
        return None
    return (outcome | outcome.is_null() if check.ignore_na else outcome.fill_null(False)).all()


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
