"""Reading DuckDB files in tests: the warehouse of a tenant, or the analysts' analytics.duckdb.

Every connection here is read-only and in UTC, as `cs_pipeline.warehouse.connect` makes the
pipeline's: TIMESTAMPTZ values come back as UTC datetimes whatever the machine's time zone,
so a test asserts the same values on every machine. These connect with duckdb directly (not
`cs_pipeline.warehouse.connect`), so they never create the schema or wait for a lock."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import duckdb

WAREHOUSE = "warehouse.duckdb"  # the warehouse file of every tenant the tests write


def warehouse_path(where: str | Path) -> Path:
    """The DuckDB file `where` names: a `.duckdb` file itself; else a tenant, by its folder or its
    config file, whose warehouse is `warehouse.duckdb` in that folder (the tests' configs say
    `warehouse: warehouse.duckdb`)."""
    where = Path(where)
    if where.suffix == ".duckdb":
        return where
    return (where if where.is_dir() else where.parent) / WAREHOUSE


def read_only(where: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the DuckDB file of `where` (see `warehouse_path`), in UTC. Close
    it, or use it as a context manager: `with read_only(tenant) as con:`."""
    con = duckdb.connect(str(warehouse_path(where)), read_only=True)
    con.execute("SET TimeZone = 'UTC'")
    return con


def rows(where: str | Path, sql: str, parameters: Sequence | None = None) -> list[tuple]:
    """The rows of `sql` on the DuckDB file of `where`, read-only, in UTC."""
    with read_only(where) as con:
        return con.execute(sql, parameters).fetchall()


def table(where: str | Path, name: str) -> list[tuple]:
    """Every row of table `name` but its run_id (which differs from run to run), sorted."""
    return rows(where, f"SELECT * EXCLUDE (run_id) FROM {name} ORDER BY ALL")


def warehouse_digest(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Every table of the warehouse, rows sorted, as one digest per table."""
    tables = [name for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").fetchall()]
    digest = {}
    for table in sorted(tables):
        rows = con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
        digest[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return digest


def bit_set_values(kind: str, column: str) -> str:
    """A query of the values each usage_account_days bit set holds (`column`: module_bits or
    action_bits), decoded through usage_value_ids (bit n from the right is value n of `kind`):
    partition_date, event_date, account_id, events and the values, sorted."""
    return (
        f"SELECT d.partition_date, d.event_date, d.account_id, d.events, list_sort(coalesce(list(i.value) "
        f"FILTER (get_bit(d.{column}, (bit_length(d.{column}) - i.id)::INTEGER) = 1), [])) "
        f"FROM usage_account_days d LEFT JOIN usage_value_ids i ON i.kind = '{kind}' "
        f"AND i.id <= bit_length(d.{column}) GROUP BY d.partition_date, d.event_date, d.account_id, d.events"
    )
