"""Roll-ups over the account hierarchy for one day, written to `account_rollups`
(docs/metrics.md#roll-up-metrics, docs/health.md#sub-account-health).

Two steps around health: the roll-up metrics before it (so profile rules can use them), the
descendant health counts and subaccount_health after every profile's health of the day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from cs_pipeline import publish
from cs_pipeline.config import PipelineConfig
from cs_pipeline.metrics.window_users import window_users
from cs_pipeline.transactions import transaction
from cs_pipeline.warehouse import read_sql, require_rows, set_variables

SUBACCOUNT_HEALTH_LABELS = ("Good", "Average", "Poor")


@dataclass(frozen=True)
class RollupResult:
    """What compute_account_rollups wrote for one day."""
    rows: int  # accounts with descendants
    max_descendants: int


def compute_account_rollups(con: duckdb.DuckDBPyConnection, *, as_of: date, run_id: str) -> RollupResult:
    """Replaces the day's account_rollups rows with the roll-up metrics (descendant health
    columns null until compute_subaccount_health). Runs on the connection that has just
    computed the day's account_metrics, whose users of window 30 it reuses (the metrics
    domain's contract, metrics/window_users.py): they are the costliest input of both."""
    require_rows(con, "account_metrics", as_of)
    # the roll-up SQL reads the contract's table through this view (free: DuckDB inlines it)
    con.execute(f"CREATE OR REPLACE TEMP VIEW rollup_window_users AS SELECT * FROM {window_users(con, as_of)}")
    set_variables(con, as_of=as_of, run_id=run_id)
    _run(con, as_of, "rollups/subtrees.sql", "rollups/account_rollups.sql")
    [(rows, max_descendants)] = con.execute(
        "SELECT count(*), coalesce(max(descendants), 0) FROM account_rollups WHERE date = ?", [as_of]
    ).fetchall()
    return RollupResult(rows=rows, max_descendants=max_descendants)


def compute_subaccount_health(
    con: duckdb.DuckDBPyConnection, config: PipelineConfig, *, as_of: date, run_id: str
) -> dict[str, int]:
    """Fills the day's descendant health counts and subaccount_health; returns the accounts
    per subaccount_health (Good/Average/Poor, and None for those without scored descendants)."""
    require_rows(con, "account_health", as_of)
    rule = config.rollups.subaccount_health
    set_variables(
        con,
        as_of=as_of,
        run_id=run_id,
        by_contract_value=rule.by == "contract_value",
        poor_share=rule.poor_share,
        good_share=rule.good_share,
    )
    _run(con, as_of, "rollups/subtrees.sql", "rollups/subaccount_health.sql")
    counts = dict(
        con.execute(
            "SELECT subaccount_health, count(*) FROM account_rollups WHERE date = ? GROUP BY ALL", [as_of]
        ).fetchall()
    )
    return {label: counts.get(label, 0) for label in (*SUBACCOUNT_HEALTH_LABELS, None)}


def _run(con: duckdb.DuckDBPyConnection, as_of: date, *sql_files: str) -> None:
    """Runs the SQL files in one transaction that also queues as_of's account_rollups for publishing."""
    with transaction(con):
        for sql_file in sql_files:
            con.execute(read_sql(sql_file))
        publish.queue(con, "account_rollups", [(as_of,)])
