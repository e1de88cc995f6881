"""The schema upgrade to versioned CRM snapshots (`tables.CRM_VERSIONS`, run by migrations.py):
the full copies per snapshot date become versions with nothing lost, and users gets the state
its incremental refresh starts from."""

from __future__ import annotations

import duckdb

from cs_pipeline import tables
from cs_pipeline.crm.versions import SNAPSHOT_TABLES
from cs_pipeline.lib.sql import quote_identifier
from cs_pipeline.warehouse import read_sql

# each versioned table and the table of full copies it replaces
REPLACED = {
    "crm_account_versions": "crm_accounts_raw",
    "crm_asset_versions": "crm_assets_raw",
    "crm_contact_versions": "crm_contacts_raw",
    "account_versions": "account_snapshots",
    "hierarchy_issue_versions": "hierarchy_issue_snapshots",
}


def versions_from_copies(con: duckdb.DuckDBPyConnection) -> None:
    """Every snapshot date of the copies becomes a snapshot date of its asset (the dates any of
    the asset's tables holds rows for), and each table's copies become its versions."""
    for asset, versioned in SNAPSHOT_TABLES.items():
        copies = " UNION ALL ".join(f"SELECT snapshot_date, run_id FROM {REPLACED[t]}" for t in versioned)
        con.execute(
            "INSERT INTO snapshot_dates (asset, snapshot_date, run_id) "
            f"SELECT ?, snapshot_date, max(run_id) FROM ({copies}) GROUP BY snapshot_date",
            [asset],
        )
        for table in versioned:
            con.execute(
                read_sql("crm/versions_from_copies.sql").format(
                    old=REPLACED[table],
                    new=table,
                    asset=asset,
                    payload=", ".join(quote_identifier(c) for c in tables.TABLES[table].payload()),
                )
            )
    con.execute(read_sql("crm/contact_users.sql"))
    con.execute(read_sql("crm/seed_users_state.sql"))
