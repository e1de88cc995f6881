"""Account snapshots for tests that start from the account dimension: stored as the `accounts`
asset stores them (crm/versions.py), from plain rows."""

from __future__ import annotations

from datetime import date

import duckdb

from cs_pipeline.crm import versions
from cs_pipeline.transactions import transaction


def store_account_snapshot(con: duckdb.DuckDBPyConnection, day: date | str, rows: list[dict]) -> None:
    """Stores `rows` (account dimension columns by name; each a root unless it says otherwise) as
    the account snapshot of `day`, with no hierarchy issue."""
    for table in versions.SNAPSHOT_TABLES["accounts"]:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE incoming_{table} AS "
            f"SELECT * EXCLUDE (valid_from, valid_to, occurrence, run_id) FROM {table} LIMIT 0"
        )
    for row in rows:
        account = {"root_id": row["account_id"], "depth": 0, "path": [row["account_id"]], **row}
        names = ", ".join(account)
        marks = ", ".join("?" for _ in account)
        con.execute(f"INSERT INTO incoming_account_versions ({names}) VALUES ({marks})", list(account.values()))
    with transaction(con):
        versions.store_snapshots(con, "accounts", date.fromisoformat(str(day)), "test")


def full_copies(table: str, source: str = "main") -> str:
    """A query of versioned `table` of database `source` as the full copies per snapshot date it
    replaced (snapshot_date, then its rows), as the warehouse held them before schema version
    tables.CRM_VERSIONS. Plain SQL: it runs on connections without the pipeline's macros."""
    [asset] = [asset for asset, stored in versions.SNAPSHOT_TABLES.items() if table in stored]
    return (
        f"SELECT d.snapshot_date, v.* EXCLUDE (valid_from, valid_to, occurrence) "
        f"FROM {source}.{table} v JOIN {source}.snapshot_dates d ON d.asset = '{asset}' "
        "AND v.valid_from <= d.snapshot_date AND (v.valid_to IS NULL OR d.snapshot_date < v.valid_to)"
    )
