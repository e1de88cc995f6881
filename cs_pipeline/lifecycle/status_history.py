"""Status history and status changes of the CRM snapshots (docs/lifecycle.md#status-history)."""

from __future__ import annotations

from datetime import date

import duckdb

from cs_pipeline import publish
from cs_pipeline.transactions import transaction
from cs_pipeline.warehouse import read_sql, set_variables

CHANGE_KINDS = ("new", "conversion", "churn", "reactivation", "downgrade", "plan_change", "unclassified")


def record_status_history(con: duckdb.DuckDBPyConnection, *, snapshot_date: date, run_id: str) -> dict[str, int]:
    """Replaces status_history for snapshot_date and the status changes it takes part in;
    returns snapshot_date's changes by kind (every kind, 0 included)."""
    set_variables(con, partition_date=snapshot_date, run_id=run_id)
    with transaction(con):
        con.execute(read_sql("lifecycle/status_history.sql"))
        publish.queue(con, "status_history", [(snapshot_date,)])
        # the changes of snapshot_date, and of the next snapshot date when it was redone
        publish.queue_query(con, "status_changes", "SELECT date FROM change_dates")
    counts = dict(
        con.execute(
            "SELECT kind, count(*) FROM status_changes WHERE date = ? GROUP BY kind", [snapshot_date]
        ).fetchall()
    )
    return {kind: counts.get(kind, 0) for kind in CHANGE_KINDS}
