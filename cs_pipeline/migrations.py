"""Versioned schema migrations of the warehouse.

The warehouse records its schema version in `schema_version` (one row per migration applied).
`upgrade` runs on every read-write open (`warehouse.connect`), in one transaction: DuckDB admits
one writing process, and a lock serialises the connections of this process, so one opener
applies what is missing and the others find it done.

- A new (empty) warehouse gets every table of the registry (`cs_pipeline/tables.py`) at the
  newest version, with its comments, and one row saying so.
- A warehouse without `schema_version` that holds every table of version 1 was made by the
  code before versions (its `sql/warehouse/schema.sql`): it is stamped version 1 unchanged.
  One holding only some of them is refused (nothing this code knows how to upgrade).
- Then each migration above the recorded version runs, in order, and is recorded: what the
  registry marks `since` that version (tables created, nullable columns appended), then the
  version's function, if any, then the retired tables marked `until` that version are dropped
  (the function has moved their rows). A version is applied once: the runner skips what is
  recorded. Columns the registry marks `until` that version are dropped with the tables.
- A warehouse at a version above the code's is refused (WarehouseTooNew), naming the file and
  both versions. A read-only open of an outdated warehouse is refused too (WarehouseOutdated),
  saying to open it read-write once: a read-only connection cannot change it.

Versions:
  1  the schema of main before versions (sql/warehouse/schema.sql), recognised by its tables
  2  every table's and column's description stored as a catalog comment (duckdb_tables(),
     duckdb_columns()), so whoever opens the warehouse reads what a column means; the
     published layer's publish_queue
  3  account_metrics.days_since_active_30d (null on the rows written before)
  4  the health lab's tables health_backtest, health_backtest_churns, health_backtest_rules
     (docs/health-lab.md#tables)
  5  the CRM snapshots as versions instead of a full copy per date (crm/versions.py,
     tables.CRM_VERSIONS): crm_*_raw, account_snapshots and hierarchy_issue_snapshots become
     crm_*_versions, account_versions and hierarchy_issue_versions with snapshot_dates;
     users is kept up to date from user_day_changes and user_contacts
  6  snapshot_dates.fingerprint (tables.SNAPSHOT_FINGERPRINTS): what each snapshot date was made
     from, so that a day whose CRM did not change is recorded without reading it (crm/versions.py);
     null on the dates stored before, which are never matched
  7  usage_event_keys, a 64-bit key per stored event_id, built from usage_events
     (cs_pipeline/event_keys.py, tables.EVENT_KEYS); every read-write open also rebuilds the keys
     when DuckDB's hash() no longer gives the canaries the keys recorded with them
  8  each account-day's modules and actions as bit sets (usage_account_days.module_bits,
     action_bits; usage_value_ids numbers the values: tables.USAGE_BIT_SETS), filled from the
     stored lists and maps (cs_pipeline/usage/upgrade.py); usage_account_days.modules dropped
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cs_pipeline import event_keys, tables
from cs_pipeline.lib.sql import quote_identifier
from cs_pipeline.transactions import transaction

VERSION_TABLE = "schema_version"


class SchemaVersionError(Exception):
    """The warehouse's schema version does not fit this code."""


class WarehouseTooNew(SchemaVersionError):
    """The warehouse was written by a newer cs_pipeline."""


class WarehouseOutdated(SchemaVersionError):
    """A read-only connection met a warehouse that needs migrating."""


@dataclass(frozen=True)
class Migration:
    """One version of the warehouse schema, and how to bring the previous one to it."""

    version: int
    description: str
    apply: Callable[[duckdb.DuckDBPyConnection], None] | None = None


def _store_comments(con: duckdb.DuckDBPyConnection, version: int | None = None) -> None:
    """The registry's descriptions as comments on what a warehouse at `version` has (None: the newest)."""
    con.execute(tables.comment_statements(version))


def _usage_bit_sets(con: duckdb.DuckDBPyConnection) -> None:
    from cs_pipeline.usage import upgrade  # imports the warehouse module, as the CRM's does

    upgrade.bit_sets_from_lists(con)


def _crm_versions(con: duckdb.DuckDBPyConnection) -> None:
    from cs_pipeline.crm import upgrade  # the CRM's own SQL; imported here, as it imports the warehouse module

    upgrade.versions_from_copies(con)


# The migrations with a function or a description of their own; a version whose only change is
# registry entries marked `since` it needs none (its description is made from them).
EXPLICIT: tuple[Migration, ...] = (
    Migration(1, "the schema of the code before versions (sql/warehouse/schema.sql), recognised by its tables"),
    Migration(
        2, "table and column descriptions from the registry as catalog comments", lambda con: _store_comments(con, 2)
    ),
    Migration(
        tables.CRM_VERSIONS,
        "the CRM snapshots' full copies per date turned into versions; users' state for incremental refreshes",
        _crm_versions,
    ),
    Migration(
        tables.EVENT_KEYS,
        "usage_event_keys built from usage_events, with the canaries' keys",
        event_keys.rebuild,
    ),
    Migration(
        tables.USAGE_BIT_SETS,
        "the daily aggregates' modules and actions numbered and kept as bit sets",
        _usage_bit_sets,
    ),
)


def _added_by(version: int) -> tuple[list[tables.Table], list[tuple[tables.Table, tables.Column]]]:
    """The tables, and the columns of older tables, that the registry marks `since` version."""
    new_tables = [t for t in tables.TABLE_LIST if t.since == version]
    new_columns = [(t, c) for t in tables.TABLE_LIST if t.since < version for c in t.columns if c.since == version]
    return new_tables, new_columns


def migrations() -> list[Migration]:
    """Every version in order, the registry's additions folded into its migration."""
    explicit = {m.version: m for m in EXPLICIT}
    since = {t.since for t in tables.TABLE_LIST} | {c.since for t in tables.TABLE_LIST for c in t.columns}
    until = {t.until for t in tables.RETIRED} | {c.until for t in tables.TABLE_LIST for c in t.columns if c.until}
    versions = sorted(set(explicit) | since | until)
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"schema versions must run 1, 2, 3... without a gap, got {versions}")
    found = [explicit[1]]  # the base: what a warehouse of the code before versions holds
    for version in versions[1:]:
        new_tables, new_columns = _added_by(version)
        dropped = [t for t in tables.RETIRED if t.until == version]
        dropped_columns = [(t, c) for t in tables.TABLE_LIST for c in t.columns if c.until == version]
        own = explicit.get(version)
        added = [f"create {t.name}" for t in new_tables] + [f"add {t.name}.{c.name}" for t, c in new_columns]
        removed = [f"drop {t.name}" for t in dropped] + [f"drop {t.name}.{c.name}" for t, c in dropped_columns]
        description = "; ".join(([own.description] if own else []) + added + removed)

        def apply(
            con,
            new_tables=new_tables,
            new_columns=new_columns,
            own=own,
            dropped=dropped,
            dropped_columns=dropped_columns,
            version=version,
        ):
            for table in new_tables:
                con.execute(table.create_statement(version))
            for table, column in new_columns:
                con.execute(f"ALTER TABLE {quote_identifier(table.name)} ADD COLUMN {column.ddl()}")
            if own is not None and own.apply is not None:
                own.apply(con)
            for table in dropped:
                con.execute(f"DROP TABLE {quote_identifier(table.name)}")
            for table, column in dropped_columns:
                con.execute(f"ALTER TABLE {quote_identifier(table.name)} DROP COLUMN {quote_identifier(column.name)}")

        found.append(Migration(version, description, apply))
    return found


MIGRATIONS = migrations()
LATEST = MIGRATIONS[-1].version
_LOCK = threading.Lock()


def stored_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The warehouse's schema version; None when it has no schema_version table."""
    [(present,)] = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND schema_name = 'main' AND table_name = ?",
        [VERSION_TABLE],
    ).fetchall()
    if not present:
        return None
    [(version,)] = con.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchall()
    return version or 0


def _existing_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'"
    ).fetchall()
    return {name for (name,) in rows}


def _stamp(con: duckdb.DuckDBPyConnection, version: int, description: str) -> None:
    con.execute(f"INSERT INTO {VERSION_TABLE} VALUES (?, now(), ?)", [version, description])


def _refuse_newer(path: Path, version: int) -> None:
    if version > LATEST:
        raise WarehouseTooNew(
            f"the warehouse {path} is at schema version {version}, newer than this code's version {LATEST}: "
            "it was written by a newer cs_pipeline. Run that version (or a newer one) against it."
        )


def check(con: duckdb.DuckDBPyConnection, path: str | Path) -> None:
    """For a read-only connection: fails unless the warehouse is at this code's version."""
    version = stored_version(con)
    if version is not None:
        _refuse_newer(Path(path), version)
    if version != LATEST:
        shown = "has no schema version (made before versions)" if version is None else f"is at schema version {version}"
        raise WarehouseOutdated(
            f"the warehouse {path} {shown}; this code needs version {LATEST}. Open it read-write once to "
            "upgrade it (any cs-pipeline materialize or backfill does, or cs_pipeline.warehouse.connect(path))."
        )


def upgrade(con: duckdb.DuckDBPyConnection, path: str | Path) -> list[int]:
    """Bring a read-write warehouse to LATEST (see the module's docstring), its event keys made
    by this DuckDB's hash(); returns the versions applied (empty when it was up to date)."""
    path = Path(path)
    if stored_version(con) == LATEST and event_keys.made_by_this_hash(con):
        return []
    with _LOCK, transaction(con):
        applied = _upgrade_in_transaction(con, path)
        # a new warehouse, or keys made by another DuckDB's hash(): built before any ingest reads them
        if not event_keys.made_by_this_hash(con):
            event_keys.rebuild(con)
    return applied


def _upgrade_in_transaction(con: duckdb.DuckDBPyConnection, path: Path) -> list[int]:
    version = stored_version(con)  # again, under the lock: another connection may have done it
    if version is None:
        present = _existing_tables(con)
        version_1 = {t.name for t in tables.tables_at(1) if t.name != VERSION_TABLE}
        if not present & version_1:
            con.execute(tables.create_statements())
            _store_comments(con)
            _stamp(con, LATEST, f"new warehouse, created at version {LATEST}")
            return [LATEST]
        if missing := sorted(version_1 - present):
            raise SchemaVersionError(
                f"the warehouse {path} has no schema version and lacks the tables {', '.join(missing)} of "
                "version 1: it is not a cs_pipeline warehouse this code can upgrade"
            )
        con.execute(tables.TABLES[VERSION_TABLE].create_statement(1))
        _stamp(con, 1, MIGRATIONS[0].description)
        version = 1
    _refuse_newer(path, version)
    applied = []
    for migration in MIGRATIONS[version:]:
        if migration.apply is not None:
            migration.apply(con)
        _stamp(con, migration.version, migration.description)
        applied.append(migration.version)
    if applied:
        _store_comments(con)  # descriptions edited since: a new version brings them along
    return applied
