"""The published query layer (docs/data-model.md#published-layer): the public tables as Parquet files and
`analytics.duckdb`, a database of views over them, for analysts.

What belongs here: which tables are published and by which partition columns (PUBLISHED,
from the table registry), how a writer queues the partitions it changed (queue, queue_query: in the
same transaction as its writes), how the queue is drained into files (drain, called by
WarehouseResource.connection after each step), and the views of analytics.duckdb.

Layout under the `published:` folder of the config:

    <table>/part-0.parquet                                   unpartitioned tables
    <table>/<col>=<value>[/<col>=<value>]/part-0.parquet     partitioned tables (hive)
    analytics.duckdb                                          one view per table
    analytics.sql                                             the same views as text

Partition columns live in the path (values percent-encoded as DuckDB and Polars write
them), not in the file. A file is written under a temporary name in its folder and renamed
into place, so a reader sees the old file or the new one, never a part. A partition whose
rows are all gone keeps a file without rows: a reader that listed the file earlier (a held
Polars or pyarrow scan, a DuckDB query between its glob and its read) never meets a missing
file. The views glob the files at each query, so a session's next query sees a new day.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from urllib.parse import quote, unquote

import duckdb

from cs_pipeline.tables import PUBLIC_TABLES
from cs_pipeline.transactions import transaction

# table -> its partition columns, in path order: the public tables of the registry
# (cs_pipeline/tables.py). Everything else in the warehouse is internal.
PUBLISHED: dict[str, tuple[str, ...]] = {name: table.partition for name, table in PUBLIC_TABLES.items()}
FILE_NAME = "part-0.parquet"
DATABASE_NAME = "analytics.duckdb"
DDL_NAME = "analytics.sql"


def fragment(table: str, values: Sequence[object]) -> str:
    """The hive path of a partition, e.g. 'date=2025-11-01/profile=default' ('' unpartitioned)."""
    columns = PUBLISHED[table]
    if len(values) != len(columns):
        raise ValueError(f"{table} is partitioned by {columns}, got the values {tuple(values)}")
    return "/".join(f"{column}={quote(str(value), safe='')}" for column, value in zip(columns, values, strict=True))


def queue(con: duckdb.DuckDBPyConnection, table: str, partitions: Iterable[Sequence[object]] = ((),)) -> None:
    """Queue partitions of `table` for publishing: tuples of partition values in PUBLISHED
    order (the default: the whole of an unpartitioned table). Call it in the transaction
    that writes them, so the queue never misses a committed change."""
    rows = [(table, fragment(table, values)) for values in partitions]
    if rows:
        con.executemany("INSERT INTO publish_queue VALUES (?, ?)", rows)


def queue_query(con: duckdb.DuckDBPyConnection, table: str, query: str, parameters: list | None = None) -> None:
    """Queue the partitions of `table` whose values `query` returns (one row per partition)."""
    queue(con, table, con.execute(query, parameters or []).fetchall())


def queue_everything(con: duckdb.DuckDBPyConnection) -> None:
    """Queue every partition the warehouse holds, and every unpartitioned table."""
    for table, columns in PUBLISHED.items():
        if columns:
            names = ", ".join(columns)
            queue_query(con, table, f"SELECT DISTINCT {names} FROM {table}")
        else:
            queue(con, table)


def drain(con: duckdb.DuckDBPyConnection, folder: str | Path) -> int:
    """Publish every queued partition into `folder`, then forget them; rebuild analytics.duckdb
    when its views would change. Returns how many partitions were written. The queue rows
    are deleted only once their files are in place: after a crash, the next drain publishes
    them again (which writes the same files). A folder without analytics.sql (new, or
    deleted) gets everything."""
    folder = Path(folder).resolve()
    if not (folder / DDL_NAME).exists():
        with transaction(con):
            queue_everything(con)
    pending = con.execute("SELECT DISTINCT table_name, partition FROM publish_queue ORDER BY ALL").fetchall()
    if not pending:
        return 0
    columns = {table: _columns(con, table) for table in PUBLISHED}
    # a file's rows need no order, and the COPY of a big partition is about 10 % faster
    # without it; a global setting, restored before the step's connection is handed back
    [(ordered,)] = con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()
    con.execute("SET preserve_insertion_order = false")
    try:
        for table, partition in pending:
            _publish_partition(con, folder, table, partition, columns[table])
    finally:
        con.execute(f"SET preserve_insertion_order = {bool(ordered)}")
    with transaction(con):
        con.executemany("DELETE FROM publish_queue WHERE table_name = ? AND partition = ?", pending)
    _refresh_views(folder, columns)
    return len(pending)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """(column, type) of a warehouse table, in table order."""
    return con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()


def _publish_partition(
    con: duckdb.DuckDBPyConnection, folder: Path, table: str, partition: str, columns: list[tuple[str, str]]
) -> None:
    keys = PUBLISHED[table]
    values = [unquote(part.split("=", 1)[1]) for part in partition.split("/")] if partition else []
    types = dict(columns)
    where = " AND ".join(f"{_ident(k)} = CAST(? AS {types[k]})" for k in keys) or "TRUE"
    selected = ", ".join(_ident(name) for name, _ in columns if name not in keys)
    directory = folder / table / partition if partition else folder / table
    directory.mkdir(parents=True, exist_ok=True)
    for leftover in directory.glob(f".{FILE_NAME}.*.tmp"):  # from a publish killed mid-way
        leftover.unlink(missing_ok=True)
    temporary = directory / f".{FILE_NAME}.{secrets.token_hex(6)}.tmp"
    try:
        con.execute(
            f"COPY (SELECT {selected} FROM {_ident(table)} WHERE {where}) TO {_literal(str(temporary))} "
            "(FORMAT parquet)",
            values,
        )
        fsync(temporary)
        os.replace(temporary, directory / FILE_NAME)
    except BaseException as exc:
        temporary.unlink(missing_ok=True)
        if isinstance(exc, Exception):
            raise RuntimeError(
                f"publishing {table} {partition or '(whole table)'} to {directory} failed: {exc}"
            ) from exc
        raise
    fsync(directory)


def fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk: after a power loss, a renamed file is
    whole before its queue row is gone."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def view_ddl(folder: Path, columns: dict[str, list[tuple[str, str]]]) -> str:
    """The views of analytics.duckdb: each table's columns in warehouse order with their types.
    A typed empty row set is united (by name) with the files, so a table without files yet, or
    a column older files lack (a custom metric added later), reads as empty or null."""
    statements = [
        "-- The published query layer's views (written by cs_pipeline; rebuilt when a table's\n"
        "-- columns or the published folder change). Each reads the table's Parquet files at query time.\n"
    ]
    for table, keys in PUBLISHED.items():
        typed = ",\n        ".join(f"CAST(NULL AS {kind}) AS {_ident(name)}" for name, kind in columns[table])
        names = ", ".join(_ident(name) for name, _ in columns[table])
        types = dict(columns[table])
        hive = ", ".join(f"{_literal(k)}: {types[k]}" for k in keys)
        pattern = _literal(str(folder / table / ("**/*.parquet" if keys else FILE_NAME)))
        options = (
            f"hive_partitioning = true, hive_types = {{{hive}}}, union_by_name = true, allow_empty = true"
            if keys
            else "allow_empty = true"
        )
        statements.append(
            f"CREATE OR REPLACE VIEW {_ident(table)} AS\nSELECT {names}\nFROM (\n"
            f"    SELECT\n        {typed}\n    WHERE false\n    UNION ALL BY NAME\n"
            f"    SELECT * FROM read_parquet({pattern}, {options})\n);\n"
        )
    return "\n".join(statements)


def _refresh_views(folder: Path, columns: dict[str, list[tuple[str, str]]]) -> None:
    """Rebuild analytics.duckdb under a temporary name and rename it into place when its views
    change: sessions holding the old file keep it (and its views read the same folder)."""
    ddl = view_ddl(folder, columns)
    database, text = folder / DATABASE_NAME, folder / DDL_NAME
    if database.exists() and text.exists() and text.read_text() == ddl:
        return
    for leftover in folder.glob(".analytics.*.tmp*"):  # from a rebuild killed mid-way (.wal included)
        leftover.unlink(missing_ok=True)
    temporary = folder / f".{DATABASE_NAME}.{secrets.token_hex(6)}.tmp"
    with duckdb.connect(str(temporary)) as analytics:
        analytics.execute(ddl)
        analytics.execute("CHECKPOINT")
    fsync(temporary)
    os.replace(temporary, database)
    text_temporary = folder / f".{DDL_NAME}.{secrets.token_hex(6)}.tmp"
    text_temporary.write_text(ddl)
    fsync(text_temporary)
    os.replace(text_temporary, text)
    fsync(folder)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
