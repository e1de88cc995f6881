"""The DuckDB warehouse: connections (schema migrations applied on open), and the metadata
every asset reports. The tables are those of the registry, `cs_pipeline/tables.py`."""

from __future__ import annotations

import itertools
import re
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import polars as pl

from cs_pipeline import migrations, publish, tables
from cs_pipeline.migrations import SchemaVersionError, WarehouseOutdated, WarehouseTooNew
from cs_pipeline.vocabulary import sql_macros

__all__ = ["SchemaVersionError", "WarehouseOutdated", "WarehouseTooNew"]

PACKAGE_DIR = Path(__file__).resolve().parent
# the example queries for analysts (not run by the pipeline)
EXAMPLES_DIR = PACKAGE_DIR.parent / "sql" / "examples"


def sql_file(name: str) -> Path:
    """The SQL file `name` ("<domain>/<file>.sql") stands for: the domain's sql/<file>.sql."""
    domain, file = name.split("/", 1)
    return PACKAGE_DIR / domain / "sql" / file


def read_sql(name: str) -> str:
    """The text of a domain's SQL file, named "<domain>/<file>.sql"."""
    return sql_file(name).read_text()


# How the SQL files read the CRM snapshots' versions (cs_pipeline/crm/versions.py): whether a
# version holds on snapshot date on_day; the snapshot date in force on a day, the newest one on
# or before it, else the oldest. They read the warehouse's snapshot_dates. Temporary macros of
# the connection, or, given `catalog`, macros of that attached catalog (as sql_macros).
def snapshot_macros(catalog: str | None = None) -> str:
    """The statements that create the snapshot macros (`in_force`, `snapshot_in_force`)."""
    create = f"CREATE OR REPLACE MACRO {catalog}." if catalog else "CREATE OR REPLACE TEMP MACRO "
    return (
        f"{create}in_force(valid_from, valid_to, on_day) AS "
        "valid_from <= on_day AND (valid_to IS NULL OR on_day < valid_to);\n"
        f"{create}snapshot_in_force(of_asset, on_day) AS ("
        "SELECT coalesce(max(snapshot_date) FILTER (WHERE snapshot_date <= on_day), min(snapshot_date)) "
        "FROM snapshot_dates WHERE asset = of_asset);\n"
    )


# A held warehouse's macros (held_open): in an in-memory catalog of the open database, which its
# cursors put on their search path. Creating them on each cursor, as temporary macros, cost about
# 4 ms; a range run's step opens about 22 cursors a day.
HELD_MACROS_CATALOG = "cs_pipeline_macros"
HELD_SEARCH_PATH = f"SET search_path = 'main,{HELD_MACROS_CATALOG}'"

# DuckDB's default (80% of RAM) lets one day's ingest grow to several GiB; beyond this limit
# it spills to disk instead, which costs little time at 2 million events a day. Most of what
# it holds at the limit is table blocks cached by the day's scans (the event-key probe of the
# whole history): 800 MB rather than 1 GB cut the daily run's peak by 0.25 GiB, not its time.
MEMORY_LIMIT = "800MB"
# The log size at which a held warehouse (held_open) checkpoints: a daily run's fits.
HELD_CHECKPOINT_THRESHOLD = "512MB"

# How long a connection waits for another process's lock on the warehouse file when the
# caller does not say (config timeouts.warehouse_lock_seconds); and how often it says so.
DEFAULT_LOCK_TIMEOUT = 600.0
LOCK_MESSAGE_INTERVAL = 30.0

# Warehouses this process holds open (held_open): path -> the connection that holds it.
_HELD: dict[Path, duckdb.DuckDBPyConnection] = {}

# Every connection `connect` made that is still referenced (a held warehouse's cursors included:
# DuckDB interrupts one connection at a time), for interrupt_queries. Numbered rather than a
# WeakSet: copying a dict's values is atomic, so a signal handler or another thread can list
# them while the main thread opens one.
_OPEN: weakref.WeakValueDictionary[int, duckdb.DuckDBPyConnection] = weakref.WeakValueDictionary()
_NUMBERS = itertools.count()


def interrupt_queries() -> None:
    """Cancel the statement every open connection of this process is executing (safe from a
    signal handler or another thread): it raises duckdb.InterruptException in the code that ran
    it, whose transaction then rolls back. A connection between statements is not affected."""
    for ref in _OPEN.valuerefs():
        con = ref()
        if con is not None:
            try:
                con.interrupt()
            except duckdb.Error:
                pass  # closed meanwhile: nothing to interrupt


def _opened(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    _OPEN[next(_NUMBERS)] = con
    return con


class WarehouseLocked(Exception):
    """Another process kept the warehouse file locked for longer than the configured time."""


def connect(
    path: str | Path,
    *,
    read_only: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    say: Callable[[str], None] | None = None,
    analysts_folder: str | Path | None = None,
) -> duckdb.DuckDBPyConnection:
    """A connection in UTC (event days are UTC days) with the schema in place: a read-write
    connection applies the migrations the warehouse lacks (cs_pipeline/migrations.py); a
    read-only one fails with WarehouseOutdated when some are missing, and either fails with
    WarehouseTooNew on a warehouse of a newer version. While the
    process holds the warehouse open (held_open), a connection shares that database, read-only
    requests included (DuckDB opens a file once per process, in one mode). When another process
    holds the file, waits up to `lock_timeout` seconds, telling `say` who holds it, then raises
    WarehouseLocked naming that process (and `analysts_folder`, where analysts belong)."""
    path = Path(path).resolve()
    held = _HELD.get(path)
    if held is not None:
        # a cursor of the held database: held_open's own connection applied the migrations and
        # made the macros, and no other process can change the file meanwhile
        con = _opened(held.cursor())
        _set_session(con)
        con.execute(HELD_SEARCH_PATH)
        return con
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    con = _opened(_open_waiting_for_lock(path, read_only, lock_timeout, say, analysts_folder))
    _set_session(con)
    try:
        if read_only:
            migrations.check(con, path)
        else:
            migrations.upgrade(con, path)
    except BaseException:
        con.close()
        raise
    con.execute(sql_macros())  # the vocabulary the SQL files spell through macros
    con.execute(snapshot_macros())
    return con


def _set_session(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # it would write into the run's captured output


def _open_waiting_for_lock(
    path: Path,
    read_only: bool,
    timeout: float,
    say: Callable[[str], None] | None,
    analysts_folder: str | Path | None,
) -> duckdb.DuckDBPyConnection:
    started = time.monotonic()
    said_at = None
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config={"memory_limit": MEMORY_LIMIT})
        except duckdb.IOException as exc:
            holder = _lock_holder(str(exc))
            if holder is None:
                raise
            waited = time.monotonic() - started
            if waited >= timeout:
                analysts = (
                    f" If it is an analyst's session: analysts query the published layer, "
                    f"{Path(analysts_folder) / 'analytics.duckdb'}, never the warehouse file."
                    if analysts_folder
                    else ""
                )
                raise WarehouseLocked(
                    f"the warehouse {path} is locked by another process ({holder}) and stayed locked for "
                    f"{waited:.0f} s (timeouts.warehouse_lock_seconds = {timeout:g}).{analysts}"
                ) from None
            if say is not None and (said_at is None or time.monotonic() - said_at >= LOCK_MESSAGE_INTERVAL):
                say(f"waiting for the warehouse {path} (up to {timeout:g} s): locked by {holder}")
                said_at = time.monotonic()
            time.sleep(min(1.0, max(0.0, timeout - waited)))


def _lock_holder(message: str) -> str | None:
    """'<program> (PID n)' from DuckDB's lock-conflict error; None for any other error."""
    if "Could not set lock" not in message:
        return None
    found = re.search(r"Conflicting lock is held in (.+?) \(PID (\d+)\)", message)
    return f"{found.group(1)}, PID {found.group(2)}" if found else "a process DuckDB does not name"


@contextmanager
def held_open(path: str | Path, **waiting: object) -> Iterator[None]:
    """Keep the warehouse open (read-write) in this process until the block ends, for runs
    executed in process (the CLI). Each step opens and closes a connection: on its own, each
    close checkpoints the database (about 0.3 s on the benchmark's warehouse) and each
    commit of more than DuckDB's default 16 MB of log does too. Held open, the connections
    share the database, which checkpoints when its log passes HELD_CHECKPOINT_THRESHOLD and
    at the end: a daily run logs about 110 MB besides the bulk of its events (which DuckDB
    writes to the file directly), so it checkpoints once. The migrations and the macros are
    done once, here: a connection of the block is a cursor of this one that only sets its session."""
    path = Path(path).resolve()
    if path in _HELD:
        yield
        return
    con = connect(path, **waiting)
    try:
        con.execute(f"SET checkpoint_threshold = '{HELD_CHECKPOINT_THRESHOLD}'")
        con.execute(f"ATTACH ':memory:' AS {HELD_MACROS_CATALOG}")
        con.execute(sql_macros(HELD_MACROS_CATALOG) + snapshot_macros(HELD_MACROS_CATALOG))
        _HELD[path] = con
        try:
            yield
        finally:
            del _HELD[path]
    finally:
        con.close()


# Warehouses whose connections leave publishing to the end of a range run's step (WarehouseResource.held)
_PUBLISH_DEFERRED: set[Path] = set()


class WarehouseResource(dg.ConfigurableResource):
    """The DuckDB file the assets write to.

    DuckDB admits one writing process, so every asset and check that uses this resource
    sits in the `duckdb` concurrency pool.
    """

    path: str
    # the published query layer's folder (config `published:`); None: nothing is published
    published: str | None = None
    # how long a step waits for another process's lock on the file (config timeouts.warehouse_lock_seconds)
    lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT

    @contextmanager
    def held(self) -> Iterator[None]:
        """The warehouse held open in this process for the block (`held_open`): a range run's
        step opens it once, its connections share it, and it checkpoints once at the end rather
        than at each connection's close. What the block's connections queue for publishing is
        published once, when the block ends without error (a partition or a current-state
        table changed on several days is written once). Waits for another process's lock as
        `connection` does."""
        path = Path(self.path).resolve()
        with ExitStack() as stack:
            try:
                stack.enter_context(
                    held_open(
                        self.path,
                        lock_timeout=self.lock_timeout_seconds,
                        say=dg.get_dagster_logger().warning,
                        analysts_folder=self.published,
                    )
                )
            except (WarehouseLocked, SchemaVersionError) as exc:
                # the lock was waited for the configured time already; the message says who holds it
                raise dg.Failure(str(exc), allow_retries=False) from None
            _PUBLISH_DEFERRED.add(path)
            try:
                yield
            finally:
                _PUBLISH_DEFERRED.discard(path)
            with self.connection():
                pass  # publishes what the block queued

    @contextmanager
    def connection(self, *, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A step's connection. A step whose input day is missing (InputsMissing), or whose
        warehouse stays locked by another process (WarehouseLocked), fails with that message as
        a Dagster Failure, without a stack trace; while it waits for the lock, the run's log
        says who holds it. After a read-write step's work, the partitions it queued are
        published (publish.drain), however the run was launched; a step that failed leaves
        them to the next one."""
        try:
            con = connect(
                self.path,
                read_only=read_only,
                lock_timeout=self.lock_timeout_seconds,
                say=dg.get_dagster_logger().warning,
                analysts_folder=self.published,
            )
        except (WarehouseLocked, SchemaVersionError) as exc:
            raise dg.Failure(str(exc)) from None
        try:
            yield con
            if self.published is not None and not read_only and Path(self.path).resolve() not in _PUBLISH_DEFERRED:
                publish.drain(con, self.published)
        except InputsMissing as exc:  # running again finds the same rows missing
            raise dg.Failure(str(exc), allow_retries=False) from None
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


CUSTOM_METRIC_DESCRIPTION = "custom metric (config metrics:)"


def table_schema(con: duckdb.DuckDBPyConnection, table: str) -> dg.TableSchema:
    """The column schema of `table` from the registry (types, nullability, descriptions, the
    key), plus the columns the warehouse adds at run time: custom metrics of account_metrics,
    and every column of a table the registry does not list (the Salesforce mirrors)."""
    registered = tables.TABLES.get(table)
    known = registered.ordered() if registered else []
    # the table's pragma, not information_schema (4x slower: it is asked for every partition)
    extra = con.execute('SELECT name, type, NOT "notnull" FROM pragma_table_info(?) ORDER BY cid', [table]).fetchall()
    columns = [
        dg.TableColumn(
            c.name,
            c.type,
            description=c.description or None,
            constraints=dg.TableColumnConstraints(
                nullable=c.nullable, unique=registered is not None and registered.key == (c.name,)
            ),
        )
        for c in known
    ]
    columns += [
        dg.TableColumn(
            name,
            data_type,
            description=CUSTOM_METRIC_DESCRIPTION if table == "account_metrics" else None,
            constraints=dg.TableColumnConstraints(nullable=nullable),
        )
        for name, data_type, nullable in extra
        if registered is None or not registered.has(name)
    ]
    if registered is None or not registered.key:
        return dg.TableSchema(columns=columns)
    return dg.TableSchema(columns=columns, constraints=dg.TableConstraints(other=[f"key: {', '.join(registered.key)}"]))


def table_metadata(con: duckdb.DuckDBPyConnection, table: str, rows: int) -> dict[str, object]:
    """The standard metadata of an asset that writes `table`: row count, name, column schema
    (from the registry, with each column's description)."""
    return {
        "dagster/row_count": rows,
        "dagster/table_name": f"main.{table}",
        "dagster/column_schema": table_schema(con, table),
    }


def slice_version(
    con: duckdb.DuckDBPyConnection, table: str, where: str = "TRUE", params: list | None = None
) -> dg.DataVersion:
    """The data version of the rows of `table` an asset (partition) wrote: a digest of their
    content (run_id aside, and a versioned table's version columns, which later dates move), so
    a re-run that writes the same rows keeps the same version."""
    registered = tables.TABLES.get(table)
    left_out = ", ".join(("run_id", *(tables.VERSION_COLUMN_NAMES if registered and registered.versioned else ())))
    [(rows, digest)] = con.execute(
        f"SELECT count(*), coalesce(sum(hash(t)), 0) FROM (SELECT * EXCLUDE ({left_out}) FROM {table} WHERE {where}) t",
        params or [],
    ).fetchall()
    return dg.DataVersion(f"{rows}:{digest:x}")
