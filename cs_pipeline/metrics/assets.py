"""Metrics assets: every account's usage metrics for day D (`account_metrics`), in one piece of
work a day that writes the rollups domain's `account_rollups` right after, on the same
connection (declared and materialised by rollups/assets.py; why in this folder's README)."""

import dagster as dg

from cs_pipeline.assets_common.code_versions import code_version
from cs_pipeline.assets_common.declare import materialization
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyAsset, Day
from cs_pipeline.metrics.account_metrics import compute_account_metrics
from cs_pipeline.rollups.assets import account_rollups, account_rollups_spec


def build(context: DomainContext) -> list[DailyAsset]:
    """The day's work of account_metrics, which writes account_rollups too."""
    spec = dg.AssetSpec(
        "account_metrics",
        group_name="metrics",
        kinds={"duckdb", "sql"},
        code_version=code_version(__name__),
        deps=[dg.AssetKey("accounts"), dg.AssetKey("usage_events")],
        description="Usage metrics of every account for D (docs/metrics.md) from the events "
        "known at the end of D and the CRM snapshot in force, with the account columns rules may use.",
    )

    def account_metrics_and_rollups(day: Day) -> list[dg.MaterializeResult]:
        with day.warehouse.connection() as con:
            result = compute_account_metrics(con, day.config, as_of=day.date, run_id=day.run_id)
            metrics_result = materialization(
                con,
                "account_metrics",
                result.rows,
                {
                    "rows_written": result.rows,
                    "snapshot_date": str(result.snapshot_date),
                    **{
                        f"accounts_{kind}": result.rows_by_type.get(kind, 0)
                        for kind in ("account", "product", "unknown")
                    },
                    **{f"usage_{label.lower()}": count for label, count in sorted(result.usage_frequency.items())},
                    **{f"with_value_{name}": count for name, count in result.custom_values.items()},
                },
                where="date = ?",
                params=[day.date],
                asset_key="account_metrics",
            )
            # on this connection: the roll-ups reuse the window-30 users compute_account_metrics left on it
            rollups_result = account_rollups(con, day)
        if result.snapshot_date is None:
            day.log.warning(f"no CRM snapshot on or before {day.date}: only unknown accounts have metrics")
        for name, ignored in result.sql_rows_ignored.items():
            if ignored:
                day.log.warning(f"custom metric {name} returned {ignored} row(s) for IDs without a metrics row")
        return [metrics_result, rollups_result]

    return [DailyAsset((spec, account_rollups_spec()), account_metrics_and_rollups)]
