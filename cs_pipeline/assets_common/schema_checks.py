"""The blocking schema checks of the warehouse's tables, generated from the table registry
(`cs_pipeline/tables.py`) and the tables' pandera schemas (`cs_pipeline/schemas.py`), PUDL's way:
a domain's checks.py names its asset, the schemas to check and a description, nothing else.

What a check reads is derived from the registry: the stored rows of the partition the step has
just written (the table's partition columns, `Table.partition`, equal to the day's date or
profile; every row of a table without any), each registered column but run_id and the MAP columns
(read as lists of key/value structs, which the schemas do not type), JSON read as text. Here too: the verdict on
stored rows (`schema_check_result`). Not here: the schemas themselves (schemas.py), how a check
runs in its asset's step (range_step.py), checks that are not a schema (a domain's checks.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date

import dagster as dg
import duckdb
import pandera.polars as pa
import polars as pl
import pyarrow as pa_arrow

from cs_pipeline import schemas
from cs_pipeline.assets_common.range_step import DailyCheck, Day
from cs_pipeline.lib.sql import quote_identifier
from cs_pipeline.tables import TABLES, Table
from cs_pipeline.warehouse import query_frame


def schema_check(asset: str, *checked: pa.DataFrameSchema, description: str) -> DailyCheck:
    """The blocking check `<asset>_schema`: the rows of the partition just written of each table
    `checked` names (a schema's name is its table's) match that schema."""
    for schema in checked:
        _partition_values(TABLES[schema.name])  # fails now, not in a run, on a partition it cannot select

    def evaluate(day: Day) -> dg.AssetCheckResult:
        return stored_rows_verdict(day, checked)

    spec = dg.AssetCheckSpec(f"{asset}_schema", asset=asset, blocking=True, description=description)
    return DailyCheck(spec, evaluate)


# rows per frame a large table's partition is checked in (about 50 MB of a day's events)
BATCH_ROWS = 400_000


def stored_rows_verdict(day: Day, checked: Sequence[pa.DataFrameSchema]) -> dg.AssetCheckResult:
    """The verdict of `checked` on the day's stored rows of their tables: the first table that
    fails, else a pass with the number of rows checked in all. A table whose schema has no unique
    columns is read and checked in frames of about BATCH_ROWS rows: a day's 2 million events as
    one frame would add about 0.4 GB to the run's peak memory."""
    rows_checked = 0
    with day.warehouse.connection(read_only=True) as con:
        for schema in checked:
            query, parameters = _stored_rows(TABLES[schema.name], day)
            result = _pass_reading_checked_columns(con, schema, query, parameters)
            if result is None:  # not certainly valid: pandera judges every column and says what fails
                result = schema_check_result(schema, _rows(con, schema, query, parameters))
            if not result.passed:
                return result
            rows_checked += result.metadata["rows_checked"].value
    return dg.AssetCheckResult(passed=True, metadata={"rows_checked": rows_checked})


def schema_check_result(schema: pa.DataFrameSchema, rows: pl.DataFrame | Iterable[pl.DataFrame]) -> dg.AssetCheckResult:
    """A blocking check's verdict on stored rows, with the table and the failing checks in
    metadata. `rows`: a frame, or the frames of a table's rows for a schema without unique
    columns (which no frame alone can judge)."""
    if isinstance(rows, pl.DataFrame):
        rows = [rows]
    elif _has_unique(schema):
        raise ValueError(f"the schema of {schema.name} has unique columns: check its rows as one frame")
    checked, failing = 0, []
    for frame in rows:
        checked += frame.height
        found = schemas.failures(schema, frame)
        if found is not None:
            failing.append(found)
    if not failing:
        return dg.AssetCheckResult(passed=True, metadata={"rows_checked": checked})
    found = pl.concat(failing, how="vertical_relaxed")
    return dg.AssetCheckResult(
        passed=False,
        metadata={
            "table": schema.name,
            "rows_checked": checked,
            "failures": found.height,
            "failing_checks": dg.MetadataValue.md(
                "| column | check | rows | example |\n|---|---|---|---|\n"
                + "\n".join(
                    f"| {r['column']} | {r['check']} | {r['rows']} | {r['failure_case']} |"
                    for r in schemas.summarise_failures(found).iter_rows(named=True)
                )
            ),
        },
    )


def _pass_reading_checked_columns(
    con: duckdb.DuckDBPyConnection, schema: pa.DataFrameSchema, query: str, parameters: list
) -> dg.AssetCheckResult | None:
    """A pass when `schema` certainly holds on the query's rows, judged without reading the
    columns that only have a type and a nullability to check (a day's events: the ids and names,
    most of its bytes): their types from the query's result type, their nulls counted in DuckDB;
    the other columns read into Polars for `schemas.certainly_valid`. None when anything fails
    or cannot be judged so."""
    read = _columns_of_checks(schema)
    if read is None:
        return None
    given = query_frame(con, f"SELECT * FROM ({query}) LIMIT 0", parameters).schema
    plain = [name for name in schema.columns if name not in read]
    if not read <= set(given):
        return None  # a checked column absent: pandera says so
    null_counts = []
    for name in plain:
        column = schema.columns[name]
        if name not in given:
            if column.required:
                return None
            continue
        if column.dtype is not None and given[name] != column.dtype.type:
            return None
        if not column.nullable:
            nan = f" OR isnan({quote_identifier(name)})" if given[name] in (pl.Float32, pl.Float64) else ""
            null_counts.append(f"count(*) FILTER (WHERE {quote_identifier(name)} IS NULL{nan})")
    counted = ", ".join(["count(*)", *null_counts])
    [(rows, *nulls)] = con.execute(f"SELECT {counted} FROM ({query})", parameters).fetchall()
    if any(nulls):
        return None
    narrowed = schema.remove_columns(plain)
    selected = ", ".join(quote_identifier(name) for name in narrowed.columns) or "NULL AS nothing"
    frames = _rows(con, narrowed, f"SELECT {selected} FROM ({query})", parameters)
    for frame in [frames] if isinstance(frames, pl.DataFrame) else frames:
        if not schemas.certainly_valid(narrowed, frame):
            return None
    return dg.AssetCheckResult(passed=True, metadata={"rows_checked": rows})


def _columns_of_checks(schema: pa.DataFrameSchema) -> set[str] | None:
    """The columns `schema`'s value, uniqueness and row checks read; None when a row check does
    not name them (a check that is not `schemas._row_check`'s, or one selecting columns by a
    selector, whose columns a frame without the others would shrink)."""
    read = {name for name, column in schema.columns.items() if column.checks or column.unique}
    read |= set(schema.unique or ())
    for check in schema.checks:
        holds = check.statistics.get("holds")
        if not isinstance(holds, pl.Expr):
            return None
        names = holds.meta.root_names()
        if not names or "cs." in str(holds):  # a selector (pl.all(), a pattern, several names): unnamed columns
            return None
        read |= set(names)
    return read


def _rows(
    con: duckdb.DuckDBPyConnection, schema: pa.DataFrameSchema, query: str, parameters: list
) -> pl.DataFrame | Iterator[pl.DataFrame]:
    """The query's rows as one frame for a schema with unique columns, else in frames."""
    return query_frame(con, query, parameters) if _has_unique(schema) else _frames(con, query, parameters)


def _has_unique(schema: pa.DataFrameSchema) -> bool:
    return bool(schema.unique) or any(column.unique for column in schema.columns.values())


def _frames(con: duckdb.DuckDBPyConnection, query: str, parameters: list) -> Iterator[pl.DataFrame]:
    """The query's rows in frames of about BATCH_ROWS rows (DuckDB hands over a row group,
    122,880 rows, at a time)."""
    batches: list[pa_arrow.RecordBatch] = []
    for batch in con.sql(query, params=parameters).to_arrow_reader(BATCH_ROWS):
        batches.append(batch)
        if sum(b.num_rows for b in batches) >= BATCH_ROWS:
            yield pl.from_arrow(pa_arrow.Table.from_batches(batches))
            batches = []
    if batches:
        yield pl.from_arrow(pa_arrow.Table.from_batches(batches))


def _stored_rows(table: Table, day: Day) -> tuple[str, list]:
    """The query of the columns a schema of `table` types, over the rows of `day`'s partition."""
    columns = [
        f"{quote_identifier(c.name)}::VARCHAR AS {quote_identifier(c.name)}"
        if c.type == "JSON"
        else quote_identifier(c.name)
        for c in table.ordered()
        if c.name != "run_id" and not c.type.startswith("MAP(")
    ]
    values = _partition_values(table)
    where = " AND ".join(f"{quote_identifier(name)} = ?" for name in values) or "TRUE"
    query = f"SELECT {', '.join(columns)} FROM {quote_identifier(table.name)} WHERE {where}"
    return query, [value_of(day) for value_of in values.values()]


def _partition_values(table: Table) -> dict[str, Callable[[Day], date | str | None]]:
    """How a day gives the value of each of `table`'s partition columns: a DATE column holds the
    day's date, `profile` its profile (account_health's (date, profile) partitions)."""
    values: dict[str, Callable[[Day], date | str | None]] = {}
    for name in table.partition:
        if name == "profile":
            values[name] = _profile
        elif table.column(name).type == "DATE":
            values[name] = _date
        else:
            raise ValueError(f"table {table.name}: a schema check cannot select a partition by column {name!r}")
    return values


def _date(day: Day) -> date:
    return day.date


def _profile(day: Day) -> str:
    if day.profile is None:
        raise ValueError(f"the schema check of a (date, profile) partition was given the date {day.date} alone")
    return day.profile
