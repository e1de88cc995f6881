"""Lifecycle assets: status history of the CRM snapshots."""

import dagster as dg

from cs_pipeline.defs.shared import partition_date
from cs_pipeline.lifecycle.status_history import record_status_history
from cs_pipeline.warehouse import DUCKDB_POOL, WarehouseResource, table_metadata


def build_lifecycle_assets(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=daily,
        pool=DUCKDB_POOL,
        group_name="lifecycle",
        kinds={"duckdb", "sql"},
        deps=[dg.AssetKey("accounts")],
        description="Every account's status on CRM snapshot date D (status_history) and how it "
        "changed since the previous snapshot date (status_changes: new, conversion, churn, "
        "reactivation, downgrade, plan_change, unclassified).",
    )
    def status_history(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        day = partition_date(context)
        with warehouse.connection() as con:
            changes = record_status_history(con, snapshot_date=day, run_id=context.run.run_id)
            [(rows,)] = con.execute("SELECT count(*) FROM status_history WHERE date = ?", [day]).fetchall()
            metadata = table_metadata(con, "status_history", rows)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "rows_written": rows,
                "status_changes": sum(changes.values()),
                **{f"changes_{kind}": count for kind, count in changes.items()},
            }
        )

    return [status_history]
