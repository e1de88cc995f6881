"""Retention (docs/lifecycle.md#retention): purging the events of inactive Free accounts, logged in retention_log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from cs_pipeline import publish
from cs_pipeline.transactions import transaction
from cs_pipeline.warehouse import read_sql, require_rows, set_variables


@dataclass(frozen=True)
class RetentionResult:
    """How many accounts' events, and how many events, a retention run purged."""
    accounts_purged: int
    rows_purged: int


def purge_inactive_free_accounts(
    con: duckdb.DuckDBPyConnection, *, as_of: date, inactive_days: int, run_id: str
) -> RetentionResult:
    """Purges, as of `as_of`, the events of Free accounts without an event in their last
    `inactive_days` days; needs the day's account_metrics (the status group in force)."""
    require_rows(con, "account_metrics", as_of)
    set_variables(con, as_of=as_of, inactive_days=inactive_days, run_id=run_id)
    with transaction(con):
        con.execute(read_sql("lifecycle/retention.sql"))
        [(accounts, rows)] = con.execute("SELECT count(*), coalesce(sum(rows), 0) FROM retention_purged").fetchall()
        if accounts:
            publish.queue(con, "retention_log")
            # every delivery day that held purged events
            publish.queue_query(con, "usage_events", "SELECT DISTINCT partition_date FROM retention_purged_partitions")
    return RetentionResult(accounts_purged=accounts, rows_purged=rows)
