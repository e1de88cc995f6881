"""Roll-up assets after health: the descendants' health (the roll-up metrics come with account_metrics)."""

import dagster as dg

from cs_pipeline.assets_common.declare import materialization, warehouse_asset
from cs_pipeline.assets_common.shared import SUBACCOUNT_JOB, DomainContext, PipelineSettings, partition_date
from cs_pipeline.rollups.account_rollups import compute_subaccount_health
from cs_pipeline.warehouse import WarehouseResource

# subaccount_health runs after every profile's account_health of the day: its own job
JOB = SUBACCOUNT_JOB


def build(context: DomainContext) -> list[dg.AssetsDefinition]:
    """The subaccount_health asset, partitioned by day."""
    daily = context.daily

    @warehouse_asset(
        partitions=daily,
        group="rollups",
        kinds={"sql"},
        # day D maps to every profile's account_health partition of D
        deps=[dg.AssetKey("account_health"), dg.AssetKey("account_rollups")],
        description="Adds to D's account_rollups rows the health counts of each account's "
        "descendants (descendants_good/_average/_poor) and subaccount_health, by count or by "
        "contract value (config rollups.subaccount_health).",
    )
    def subaccount_health(
        context: dg.AssetExecutionContext, settings: PipelineSettings, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        day = partition_date(context)
        with warehouse.connection() as con:
            labels = compute_subaccount_health(con, settings.config, as_of=day, run_id=context.run.run_id)
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
                params=[day],
            )

    return [subaccount_health]
