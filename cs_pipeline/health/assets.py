"""Health assets: account_health, partitioned by day x health profile."""

import dagster as dg

from cs_pipeline.assets_common.code_versions import code_version
from cs_pipeline.assets_common.declare import materialization
from cs_pipeline.assets_common.jobs import HEALTH_JOB
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyAsset, Day
from cs_pipeline.health.account_health import HEALTH_COUNT_KEYS, compute_account_health

# account_health runs per (date, profile) partitions: its own job, after the daily one
JOB = HEALTH_JOB


def build(context: DomainContext) -> list[DailyAsset]:
    """The account_health asset, partitioned by day x profile."""
    previous_day_all_profiles = dg.AssetDep(
        "account_health",
        partition_mapping=dg.MultiPartitionMapping(
            {
                "date": dg.DimensionPartitionMapping(
                    "date", dg.TimeWindowPartitionMapping(start_offset=-1, end_offset=-1)
                ),
                "profile": dg.DimensionPartitionMapping("profile", dg.AllPartitionMapping()),
            }
        ),
    )
    spec = dg.AssetSpec(
        "account_health",
        group_name="health",
        kinds={"duckdb", "sql"},
        code_version=code_version(__name__),
        # the date dimension maps to the daily partitions; previous_health reads the day
        # before, every profile (and a partition written later corrects the next day's
        # previous_health, so any order of the partitions gives the same table)
        deps=[dg.AssetKey("account_metrics"), dg.AssetKey("account_rollups"), previous_day_all_profiles],
        description="Health of the accounts a profile scores on day D (docs/health.md): first matching "
        "profile, scorecard or dimensions, with reasons, dimension_scores and previous_health. "
        "Each (date, profile) partition replaces exactly its own rows, and the previous_health of "
        "the next day's rows.",
    )

    def account_health(day: Day) -> dg.MaterializeResult:
        with day.warehouse.connection() as con:
            result = compute_account_health(con, day.config, as_of=day.date, profile=day.profile, run_id=day.run_id)
            return materialization(
                con,
                "account_health",
                result.rows,
                {
                    "rows_written": result.rows,
                    **{HEALTH_COUNT_KEYS[label]: count for label, count in result.health.items()},
                    "turned_poor": result.turned_poor,
                    **({"mean_health_score": result.mean_health_score} if result.mean_health_score is not None else {}),
                },
                where="date = ? AND profile = ?",
                params=[day.date, day.profile],
            )

    return [DailyAsset((spec,), account_health)]
