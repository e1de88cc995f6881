"""Roll-up assets after health: the descendants' health (the roll-up metrics come with account_metrics)."""

import dagster as dg

from cs_pipeline.assets_common.declare import materialization
from cs_pipeline.assets_common.jobs import SUBACCOUNT_JOB
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyAsset, Day, daily_asset
from cs_pipeline.rollups.account_rollups import compute_subaccount_health

# subaccount_health runs after every profile's account_health of the day: its own job
JOB = SUBACCOUNT_JOB


def build(context: DomainContext) -> list[DailyAsset]:
    """The subaccount_health asset, partitioned by day."""

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
