"""Health assets: account_health, partitioned by day x health profile."""

import dagster as dg

from cs_pipeline.assets_common.declare import materialization, warehouse_asset
from cs_pipeline.assets_common.shared import HEALTH_JOB, DomainContext, PipelineSettings, health_partition
from cs_pipeline.health.account_health import HEALTH_COUNT_KEYS, compute_account_health
from cs_pipeline.warehouse import WarehouseResource

# account_health runs per (date, profile): its own job, after the daily one
JOB = HEALTH_JOB


def build(context: DomainContext) -> list[dg.AssetsDefinition]:
    """The account_health asset, partitioned by day x profile (`partitions`)."""
    partitions = context.health

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

    @warehouse_asset(
        partitions=partitions,
        group="health",
        kinds={"sql"},
        # the date dimension maps to the daily partitions; the day before, every profile, comes
        # first (previous_health), so a backfill from the UI runs the days in order
        deps=[dg.AssetKey("account_metrics"), dg.AssetKey("account_rollups"), previous_day_all_profiles],
        description="Health of the accounts a profile scores on day D (docs/health.md): first matching "
        "profile, scorecard or dimensions, with reasons, dimension_scores and previous_health. "
        "Each (date, profile) partition replaces exactly its own rows.",
    )
    def account_health(
        context: dg.AssetExecutionContext, settings: PipelineSettings, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        day, profile = health_partition(context)
        with warehouse.connection() as con:
            result = compute_account_health(con, settings.config, as_of=day, profile=profile, run_id=context.run.run_id)
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
                params=[day, profile],
            )

    return [account_health]
