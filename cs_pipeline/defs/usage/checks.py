"""Blocking schema checks on the partition's usage rows: a failure stops everything downstream."""

import dagster as dg

from cs_pipeline import schemas
from cs_pipeline.defs.shared import partition_date, schema_check_result
from cs_pipeline.usage.ingest import stored_partition
from cs_pipeline.warehouse import DUCKDB_POOL, WarehouseResource


def build_usage_checks(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetChecksDefinition]:
    @dg.asset_check(
        asset="usage_events",
        blocking=True,
        pool=DUCKDB_POOL,
        partitions_def=daily,
        description="The partition's usage_events and rejected_events rows match their pandera schemas.",
    )
    def usage_events_schema(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        with warehouse.connection(read_only=True) as con:
            events, rejected = stored_partition(con, partition_date(context))
        result = schema_check_result(schemas.usage_events, events)
        return result if not result.passed else schema_check_result(schemas.rejected_events, rejected)

    return [usage_events_schema]
