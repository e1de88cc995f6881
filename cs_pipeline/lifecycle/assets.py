"""Lifecycle assets: status history of the CRM snapshots, and retention of usage events."""

import dagster as dg

from cs_pipeline.assets_common.declare import materialization
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyAsset, Day, daily_asset
from cs_pipeline.lifecycle.retention import purge_inactive_free_accounts
from cs_pipeline.lifecycle.status_history import record_status_history


def build(context: DomainContext) -> list[DailyAsset]:
    """The status_history and retention assets, partitioned by day."""

    @daily_asset(
        group="lifecycle",
        kinds={"sql"},
        deps=["accounts"],
        description="Every account's status on CRM snapshot date D (status_history) and how it "
        "changed since the previous snapshot date (status_changes: new, conversion, churn, "
        "reactivation, downgrade, plan_change, unclassified).",
    )
    def status_history(day: Day) -> dg.MaterializeResult:
        with day.warehouse.connection() as con:
            changes = record_status_history(con, snapshot_date=day.date, run_id=day.run_id)
            [(rows,)] = con.execute("SELECT count(*) FROM status_history WHERE date = ?", [day.date]).fetchall()
            return materialization(
                con,
                "status_history",
                rows,
                {
                    "rows_written": rows,
                    "status_changes": sum(changes.values()),
                    **{f"changes_{kind}": count for kind, count in changes.items()},
                },
                where="date = ?",
                params=[day.date],
            )

    @daily_asset(
        group="lifecycle",
        kinds={"sql"},
        # after everything that reads D's events: D's metrics, roll-ups and users see them all
        deps=["account_metrics", "account_rollups", "users"],
        description="Purges the events of accounts of group Free on D with no event in their last "
        "retention.free_inactive_days days (events dated up to D), logged in retention_log; "
        "later deliveries of those events are not ingested again.",
    )
    def retention(day: Day) -> dg.MaterializeResult:
        inactive_days = day.config.retention.free_inactive_days
        with day.warehouse.connection() as con:
            if inactive_days is None:
                day.log.info("retention.free_inactive_days is null: nothing is purged")
                accounts = rows = 0
            else:
                result = purge_inactive_free_accounts(
                    con, as_of=day.date, inactive_days=inactive_days, run_id=day.run_id
                )
                accounts, rows = result.accounts_purged, result.rows_purged
            [(log_rows,)] = con.execute("SELECT count(*) FROM retention_log").fetchall()
            return materialization(
                con,
                "retention_log",
                log_rows,
                {"accounts_purged": accounts, "rows_purged": rows},
                where="purged_on = ?",
                params=[day.date],
            )

    return [status_history, retention]
