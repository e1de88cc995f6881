"""Metrics assets: every account's usage metrics for day D."""

import dagster as dg

from cs_pipeline.defs.shared import CODE_VERSION, PipelineSettings, partition_date
from cs_pipeline.metrics.account_metrics import compute_account_metrics
from cs_pipeline.warehouse import DUCKDB_POOL, WarehouseResource, slice_version, table_metadata


def build_metrics_assets(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    @dg.asset(
        partitions_def=daily,
        pool=DUCKDB_POOL,
        code_version=CODE_VERSION,
        group_name="metrics",
        kinds={"duckdb", "sql"},
        deps=[dg.AssetKey("accounts"), dg.AssetKey("usage_events")],
        description="Usage metrics of every account for D (SPEC 4.2) from the events known at the "
        "end of D and the CRM snapshot in force, with the account columns rules may use.",
    )
    def account_metrics(
        context: dg.AssetExecutionContext, settings: PipelineSettings, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        config = settings.config
        day = partition_date(context)
        with warehouse.connection() as con:
            result = compute_account_metrics(con, config, as_of=day, run_id=context.run.run_id)
            metadata = table_metadata(con, "account_metrics", result.rows)
            version = slice_version(con, "account_metrics", "date = ?", [day])
        if result.snapshot_date is None:
            context.log.warning(f"no CRM snapshot on or before {day}: only unknown accounts have metrics")
        for name, ignored in result.sql_rows_ignored.items():
            if ignored:
                context.log.warning(f"custom metric {name} returned {ignored} row(s) for IDs without a metrics row")
        return dg.MaterializeResult(
            data_version=version,
            metadata={
                **metadata,
                "rows_written": result.rows,
                "snapshot_date": str(result.snapshot_date),
                **{f"accounts_{kind}": result.rows_by_type.get(kind, 0) for kind in ("account", "product", "unknown")},
                **{f"usage_{label.lower()}": count for label, count in sorted(result.usage_frequency.items())},
                **{f"with_value_{name}": count for name, count in result.custom_values.items()},
            }
        )

    return [account_metrics]
