"""Roll-up assets after health: the descendants' health (the roll-up metrics come with account_metrics)."""

import dagster as dg

from cs_pipeline.defs.shared import CODE_VERSION, PipelineSettings, partition_date
from cs_pipeline.rollups.account_rollups import compute_subaccount_health
from cs_pipeline.warehouse import DUCKDB_POOL, WarehouseResource, slice_version, table_metadata


def build_rollup_assets(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=daily,
        pool=DUCKDB_POOL,
        code_version=CODE_VERSION,
        group_name="rollups",
        kinds={"duckdb", "sql"},
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
            rows = sum(labels.values())
            metadata = table_metadata(con, "account_rollups", rows)
            version = slice_version(con, "account_rollups", "date = ?", [day])
        return dg.MaterializeResult(
            data_version=version,
            metadata={
                **metadata,
                "subaccount_good": labels["Good"],
                "subaccount_average": labels["Average"],
                "subaccount_poor": labels["Poor"],
                "without_scored_descendants": labels[None],
            }
        )

    return [subaccount_health]
