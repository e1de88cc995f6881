"""CRM snapshots stored as versions, the way dbt snapshots keep valid_from / valid_to
(docs/data-model.md#snapshot-storage): each materialised day is a snapshot date
(`snapshot_dates`), and a versioned table (`tables.Table.versioned`) holds every row once per
run of consecutive snapshot dates it is in, not once per date. A day whose CRM did not change
adds a snapshot date and no row.

Reading: the rows of snapshot date D are those with `in_force(valid_from, valid_to, D)`; the
snapshot in force on any day is `snapshot_in_force(asset, day)` (both macros of
`warehouse.snapshot_macros`). Writing: `record_snapshot_date`, then `store_snapshot` per table,
in the asset's transaction. Dates may come in any order and again: storing D rewrites only
the versions of the rows D gains or loses against what D held (or, for a new date, what the
snapshot before it held).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from cs_pipeline import tables
from cs_pipeline.lib.sql import quote_identifier
from cs_pipeline.warehouse import read_sql, set_variables

# the assets that store snapshots, and the versioned tables each one writes
SNAPSHOT_TABLES: dict[str, tuple[str, ...]] = {
    "crm_snapshot": ("crm_account_versions", "crm_asset_versions", "crm_contact_versions"),
    "accounts": ("account_versions", "hierarchy_issue_versions"),
}


@dataclass(frozen=True)
class VersionWrites:
    """What storing one snapshot did to a versioned table."""

    snapshot_rows: int  # the rows of the snapshot
    inserted: int  # versions written
    deleted: int  # versions replaced (cut around the date, or joined to a neighbour)


def record_snapshot_date(con: duckdb.DuckDBPyConnection, asset: str, day: date, run_id: str) -> date | None:
    """Records `day` as a snapshot date of `asset` (once, whatever the re-runs); returns the next
    snapshot date after it, None when `day` is the newest."""
    con.execute("DELETE FROM snapshot_dates WHERE asset = ? AND snapshot_date = ?", [asset, day])
    con.execute("INSERT INTO snapshot_dates VALUES (?, ?, ?)", [asset, day, run_id])
    [(following,)] = con.execute(
        "SELECT min(snapshot_date) FROM snapshot_dates WHERE asset = ? AND snapshot_date > ?", [asset, day]
    ).fetchall()
    return following


def store_snapshot(
    con: duckdb.DuckDBPyConnection, table: str, day: date, next_date: date | None, incoming: str, run_id: str
) -> VersionWrites:
    """Stores the rows of the relation `incoming` (the table's payload columns, by name) as
    `table`'s snapshot of `day`, whose next snapshot date is `next_date`: afterwards every
    snapshot date's rows in force are what was last stored for it."""
    payload = tables.TABLES[table].payload()
    identity = [*payload, "occurrence"]

    def same(left: str, right: str) -> str:
        return " AND ".join(
            f"{left}.{quote_identifier(c)} IS NOT DISTINCT FROM {right}.{quote_identifier(c)}" for c in identity
        )

    set_variables(con, snapshot_date=day, next_snapshot_date=next_date, run_id=run_id)
    con.execute(
        read_sql("crm/store_versions.sql").format(
            table=quote_identifier(table),
            incoming=incoming,
            payload=", ".join(quote_identifier(c) for c in payload),
            same_ic=same("i", "c"),
            same_il=same("i", "l"),
            same_ir=same("i", "r"),
        )
    )
    [(snapshot_rows, inserted, deleted)] = con.execute(
        "SELECT (SELECT count(*) FROM version_incoming), (SELECT count(*) FROM version_new), "
        "(SELECT count(*) FROM version_removed) + (SELECT count(left_row) + count(right_row) FROM version_added)"
    ).fetchall()
    return VersionWrites(snapshot_rows, inserted, deleted)


def store_snapshots(con: duckdb.DuckDBPyConnection, asset: str, day: date, run_id: str) -> dict[str, VersionWrites]:
    """Records `day` as a snapshot date of `asset` and stores each of its tables' snapshot from the
    relation `incoming_<table>`."""
    next_date = record_snapshot_date(con, asset, day, run_id)
    return {
        table: store_snapshot(con, table, day, next_date, f"incoming_{table}", run_id)
        for table in SNAPSHOT_TABLES[asset]
    }


def version_counts(writes: dict[str, VersionWrites]) -> dict[str, int]:
    """An asset's metadata on its versions: rows written (0 on a day that changed nothing) and replaced."""
    return {
        "versions_written": sum(w.inserted for w in writes.values()),
        "versions_replaced": sum(w.deleted for w in writes.values()),
    }


def rows_in_force(table: str) -> str:
    """A query of `table`'s rows of one snapshot date (parameter ?): their content columns."""
    left_out = ", ".join((*tables.VERSION_COLUMN_NAMES, "run_id"))
    return f"SELECT * EXCLUDE ({left_out}) FROM {quote_identifier(table)} WHERE in_force(valid_from, valid_to, ?)"
