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

Unchanged days: each snapshot date records the fingerprint of what its rows were made from
(`fingerprint`: the source's content, the config and the code that map it). When D's equals that
of the date whose rows are in force on D until it is stored (D itself when re-run, else the
newest date before it), storing D would write nothing: `unchanged_since` finds that date, and
the asset records D (`record_snapshot_date`) without reading or comparing its source. A date
before every stored one is always stored: its rows would extend the next date's versions back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date

import duckdb

from cs_pipeline import tables
from cs_pipeline.lib.sql import quote_identifier, same_columns
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


@dataclass(frozen=True)
class SnapshotStored:
    """What storing one snapshot date of an asset did."""

    writes: dict[str, VersionWrites]  # per versioned table; empty when the source was not read
    unchanged_since: date | None  # the date whose rows `day` holds, found by fingerprint (None: stored in full)

    def metadata(self) -> dict[str, int]:
        """The asset's metadata on its versions: rows written (0 on a day that changed nothing) and
        replaced, and whether the day was found unchanged by fingerprint (1) rather than compared (0)."""
        return {
            "versions_written": sum(w.inserted for w in self.writes.values()),
            "versions_replaced": sum(w.deleted for w in self.writes.values()),
            "skipped_unchanged": int(self.unchanged_since is not None),
        }


def fingerprint(*parts: object) -> str | None:
    """A digest of `parts` (JSON values), None when one of them is None (not known: never matched)."""
    if any(part is None for part in parts):
        return None
    return hashlib.blake2b(json.dumps(parts).encode(), digest_size=16).hexdigest()


def unchanged_since(con: duckdb.DuckDBPyConnection, asset: str, day: date, found: str | None) -> date | None:
    """The snapshot date of `asset` whose rows are in force on `day` until `day` is stored (`day` itself,
    else the newest date before it) when its fingerprint is `found`: storing `day` from what `found`
    stands for would write nothing. None otherwise, or when `found` is None."""
    if found is None:
        return None
    rows = con.execute(
        "SELECT snapshot_date, fingerprint FROM snapshot_dates WHERE asset = ? AND snapshot_date <= ? "
        "ORDER BY snapshot_date DESC LIMIT 1",
        [asset, day],
    ).fetchall()
    return rows[0][0] if rows and rows[0][1] == found else None


def record_snapshot_date(
    con: duckdb.DuckDBPyConnection, asset: str, day: date, run_id: str, made_from: str | None = None
) -> date | None:
    """Records `day` as a snapshot date of `asset` (once, whatever the re-runs) with the fingerprint of
    what its rows are made from (None: not known); returns the next snapshot date after it, None when
    `day` is the newest."""
    con.execute("DELETE FROM snapshot_dates WHERE asset = ? AND snapshot_date = ?", [asset, day])
    con.execute(
        "INSERT INTO snapshot_dates (asset, snapshot_date, run_id, fingerprint) VALUES (?, ?, ?, ?)",
        [asset, day, run_id, made_from],
    )
    [(following,)] = con.execute(
        "SELECT min(snapshot_date) FROM snapshot_dates WHERE asset = ? AND snapshot_date > ?", [asset, day]
    ).fetchall()
    return following


# How store_versions.sql hashes a row's scalar payload columns to find the incoming rows that may
# repeat one another: identical rows hash alike; rows of different content that hash alike (the
# nested columns, MAP and LIST, are left out: hashing them cost more than it saved) are only
# numbered by their content, as duplicates are.
CONTENT_HASH = "hash({columns})"


def store_snapshot(
    con: duckdb.DuckDBPyConnection, table: str, day: date, next_date: date | None, incoming: str, run_id: str
) -> VersionWrites:
    """Stores the rows of the relation `incoming` (the table's payload columns, by name) as
    `table`'s snapshot of `day`, whose next snapshot date is `next_date`: afterwards every
    snapshot date's rows in force are what was last stored for it."""
    payload = tables.TABLES[table].payload()
    quoted = [quote_identifier(c) for c in payload]
    as_entries = _maps_as_entries(con, table, incoming)
    set_variables(con, snapshot_date=day, next_snapshot_date=next_date, run_id=run_id)
    con.execute(
        read_sql("crm/store_versions.sql").format(
            table=quote_identifier(table),
            incoming=incoming,
            payload=", ".join(quoted),
            content_hash=CONTENT_HASH.format(columns=", ".join(_scalar_columns(table))),
            # a row of the full join holds one side only: the other side's columns are all null
            payload_of_changed=", ".join(
                f"coalesce({f'map_from_entries(i.{q})' if c in as_entries else f'i.{q}'}, c.{q}) AS {q}"
                for c, q in zip(payload, quoted, strict=True)
            ),
            same_ic=" AND ".join(
                f"i.{q} IS NOT DISTINCT FROM {f'map_entries(c.{q})' if c in as_entries else f'c.{q}'}"
                for c, q in zip([*payload, "occurrence"], [*quoted, "occurrence"], strict=True)
            ),
            same_il=same_columns("i", "l", [*payload, "occurrence"]),
            same_ir=same_columns("i", "r", [*payload, "occurrence"]),
        )
    )
    [(snapshot_rows, inserted, deleted)] = con.execute(
        f"SELECT (SELECT count(*) FROM {incoming}), (SELECT count(*) FROM version_new), "
        "(SELECT count(*) FROM version_removed) + (SELECT count(left_row) + count(right_row) FROM version_added)"
    ).fetchall()
    return VersionWrites(snapshot_rows, inserted, deleted)


def _maps_as_entries(con: duckdb.DuckDBPyConnection, table: str, incoming: str) -> set[str]:
    """The MAP columns of `table` that the relation `incoming` holds as their entries (a list of
    key/value structs, as a frame from Polars has them): compared with the stored maps' entries,
    and made maps only in the rows written (making every incoming row's map cost more than the
    comparison)."""
    described = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE {incoming})").fetchall())
    return {
        c.name
        for c in tables.TABLES[table].ordered()
        if c.type.startswith("MAP") and c.name in described and not described[c.name].startswith("MAP")
    }


def _scalar_columns(table: str) -> list[str]:
    """The payload columns of `table` that are not nested (MAP, LIST), quoted."""
    spec = tables.TABLES[table]
    return [quote_identifier(c) for c in spec.payload() if not _nested(spec.column(c).type)]


def _nested(column_type: str) -> bool:
    return column_type.endswith("[]") or column_type.startswith(("MAP", "STRUCT"))


def store_snapshots(
    con: duckdb.DuckDBPyConnection, asset: str, day: date, run_id: str, made_from: str | None = None
) -> SnapshotStored:
    """Records `day` as a snapshot date of `asset` (made from what fingerprint `made_from` stands for)
    and stores each of its tables' snapshot from the relation `incoming_<table>`."""
    next_date = record_snapshot_date(con, asset, day, run_id, made_from)
    writes = {
        table: store_snapshot(con, table, day, next_date, f"incoming_{table}", run_id)
        for table in SNAPSHOT_TABLES[asset]
    }
    return SnapshotStored(writes, None)


def store_unchanged(
    con: duckdb.DuckDBPyConnection, asset: str, day: date, run_id: str, made_from: str, since: date
) -> SnapshotStored:
    """Records `day` as a snapshot date of `asset` holding the rows of `since` (`unchanged_since`
    found them made from the same `made_from`): the versions already cover it."""
    record_snapshot_date(con, asset, day, run_id, made_from)
    return SnapshotStored({}, since)


def rows_in_force(table: str) -> str:
    """A query of `table`'s rows of one snapshot date (parameter ?): their content columns."""
    left_out = ", ".join((*tables.VERSION_COLUMN_NAMES, "run_id"))
    return f"SELECT * EXCLUDE ({left_out}) FROM {quote_identifier(table)} WHERE in_force(valid_from, valid_to, ?)"
