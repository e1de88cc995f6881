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
