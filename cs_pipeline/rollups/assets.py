"""Rollups assets: `account_rollups` (the roll-up metrics of a day, written by the metrics
domain's work of the day) and `subaccount_health` (the descendants' health, its own job).

`account_rollups` is declared here but materialised by `metrics/assets.py`'s work of the day,
right after `account_metrics` and on its connection: its roll-up metrics read the users of
window 30 that account_metrics' computation leaves there (the contract, metrics/window_users.py;
why in this folder's README). That work calls `account_rollups_spec` and `account_rollups`.
"""

import dagster as dg
import duckdb

from cs_pipeline.assets_common.code_versions import code_version
from cs_pipeline.assets_common.declare import materialization
from cs_pipeline.assets_common.jobs import SUBACCOUNT_JOB
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyAsset, Day, daily_asset
from cs_pipeline.rollups.account_rollups import compute_account_rollups, compute_subaccount_health

# subaccount_health runs after every profile's account_health of the day: its own job
JOB = SUBACCOUNT_JOB


def account_rollups_spec() -> dg.AssetSpec:
    """The declaration of account_rollups. Its code version is that of the work that writes it,
    the metrics domain's work of the day (which runs this module's code too), as account_metrics'."""
    return dg.AssetSpec(
        "account_rollups",
        group_name="rollups",
        kinds={"duckdb", "sql"},
        code_version=code_version("cs_pipeline.metrics.assets"),
        deps=[dg.AssetKey("account_metrics")],
        description="Roll-up metrics of D for every account with descendants, over its subtree "
        "(rollup_events_30d, rollup_active_users_30d counting a user once per subtree, "
        "rollup_licenses, rollup_contract_value, rollup_license_utilization): profile rules may "
        "use them.",
    )


def account_rollups(con: duckdb.DuckDBPyConnection, day: Day) -> dg.MaterializeResult:
    """Writes the day's roll-up metrics to account_rollups, on the connection that has just
    computed the day's account_metrics (compute_account_rollups), and returns its result."""
    rollups = compute_account_rollups(con, as_of=day.date, run_id=day.run_id)
    return materialization(
        con,
        "account_rollups",
        rollups.rows,
        {"rows_written": rollups.rows, "max_descendants": rollups.max_descendants},
        where="date = ?",
        params=[day.date],
        asset_key="account_rollups",
    )


def build(context: DomainContext) -> list[DailyAsset]:
    """The subaccount_health asset, partitioned by day (account_rollups is in the metrics' work)."""

    @daily_asset(
        group="rollups",
        kinds={"sql"},
        # day D maps to every profile's account_health partition of D
        deps=["account_health", "account_rollups"],
        description="Adds to D's account_rollups rows the health counts of each account's "
        "descendants (descendants_good/_average/_poor) and subaccount_health, by count or by "
        "contract value (config rollups.subaccount_health).",
    )
    def subaccount_health(day: Day) -> dg.MaterializeResult:
        with day.warehouse.connection() as con:
            labels = compute_subaccount_health(con, day.config, as_of=day.date, run_id=day.run_id)
            return materialization(
                con,
                "account_rollups",
                sum(labels.values()),
                {
                    "subaccount_good": labels["Good"],
                    "subaccount_average": labels["Average"],
                    "subaccount_poor": labels["Poor"],
                    "without_scored_descendants": labels[None],
                },
                where="date = ?",
                params=[day.date],
            )

    return [subaccount_health]
