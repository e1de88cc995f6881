"""The metrics domain's contract with the rollups domain: the users active in window 30 of a day.

compute_account_metrics builds, on its connection, the temp table `TABLE`: one row per account
and user with events in the 30 days to as_of (of the events known at the end of as_of), with
its last day there (`last_day`) and per distinct_users_of_module metric its last day with that
module. It is the costliest input of both the metrics and the roll-up metrics, so the roll-ups
run right after, on the same connection (one Dagster step, metrics/assets.py), and read it
through `window_users` instead of building it again; a real table would cost a write and a
read of the daily run's largest intermediate."""

from __future__ import annotations

from datetime import date

import duckdb

from cs_pipeline.warehouse import set_variables

TABLE = "metric_user_last_days"
# the day TABLE was built for, on the connection
_AS_OF = "metric_user_last_days_as_of"


class WindowUsersMissing(LookupError):
    """The connection holds no window-30 users of the day: account_metrics was not just computed on it."""


def built(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """Records that `TABLE` on `con` now holds as_of's window-30 users (compute_account_metrics calls it)."""
    set_variables(con, **{_AS_OF: as_of})


def window_users(con: duckdb.DuckDBPyConnection, as_of: date) -> str:
    """The name of the temp table on `con` holding as_of's window-30 users (account_id, user_id,
    last_day, ...); raises WindowUsersMissing unless compute_account_metrics built it for as_of
    on this connection."""
    [(built_for,)] = con.execute(f"SELECT getvariable('{_AS_OF}')").fetchall()
    if built_for != as_of:
        raise WindowUsersMissing(
            f"no window-30 users of {as_of} on this connection (built for {built_for}): "
            "compute the day's account_metrics on it first (metrics.account_metrics.compute_account_metrics)"
        )
    return TABLE
