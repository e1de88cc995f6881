"""The DuckDB warehouse: connections, schema, and the metadata every asset reports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


def read_sql(relative_path: str) -> str:
    """The text of a SQL file under the top-level `sql/` folder."""
    return (SQL_DIR / relative_path).read_text()


# DuckDB's default (80% of RAM) lets one day's ingest grow to several GiB; beyond this limit
# it spills to disk instead, which costs little time at 2 million events a day.
MEMORY_LIMIT = "1GB"


def connect(path: str | Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """A connection in UTC (event days are UTC days) with the schema in place."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path), read_only=read_only, config={"memory_limit": MEMORY_LIMIT})
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # it would write into the run's captured output
    if not read_only:
        con.execute(read_sql("warehouse/schema.sql"))
    return con


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file the assets write to.

    DuckDB admits one writing process, so every asset and check that uses this resource
    sits in the `duckdb` concurrency pool.
    """

    path: str

    @contextmanager
    def connection(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        con = connect(self.path, read_only=read_only)
        try:
            yield con
        finally:
            con.close()


def set_variables(con: duckdb.DuckDBPyConnection, **values: object) -> None:
    """Values the SQL files read with getvariable(name)."""
    for name, value in values.items():
        con.execute(f"SET VARIABLE {name} = ?", [value])


def query_frame(con: duckdb.DuckDBPyConnection, query: str, parameters: list | None = None) -> pl.DataFrame:
    """A query's result as a Polars frame."""
    return con.sql(query, params=parameters or []).pl()


DUCKDB_POOL = "duckdb"


class InputsMissing(LookupError):
    """A step's input rows are not in the warehouse for its day."""


def require_rows(con: duckdb.DuckDBPyConnection, table: str, day: date) -> None:
    """Fails with InputsMissing, naming the table and the day, when `table` has no rows dated `day`."""
    [(rows,)] = con.execute(f"SELECT count(*) FROM {table} WHERE date = ?", [day]).fetchall()
    if rows == 0:
        raise InputsMissing(f"no {table} rows for {day}: materialise {table} for {day} first")


def table_schema(con: duckdb.DuckDBPyConnection, table: str) -> dg.TableSchema:
    columns = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return dg.TableSchema(columns=[dg.TableColumn(name, data_type) for name, data_type in columns])


def table_metadata(con: duckdb.DuckDBPyConnection, table: str, rows: int) -> dict[str, object]:
    """The standard metadata of an asset that writes `table`: row count, name, column schema."""
    return {
        "dagster/row_count": rows,
        "dagster/table_name": f"main.{table}",
        "dagster/column_schema": table_schema(con, table),
    }


def slice_version(
    con: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE", params: list | None = None
) -> dg.DataVersion:
    """The data version of the rows of `table` an asset (partition) wrote: a digest of their
    content (run_id aside), so a re-run that writes the same rows keeps the same version."""
    [(rows, digest)] = con.execute(
        f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM (SELECT * EXCLUDE (run_id) FROM {table} WHERE {where}) t",
        params or [],
    ).fetchall()
    return dg.DataVersion(f"{rows}:{digest:x}")
