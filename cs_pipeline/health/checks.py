"""Checks on account_health: the slice's schema (blocking) and one row per account and day."""

import dagster as dg

from cs_pipeline import schemas
from cs_pipeline.assets_common.declare import warehouse_check
from cs_pipeline.assets_common.shared import DomainContext, health_partition, schema_check_result
from cs_pipeline.warehouse import WarehouseResource, query_frame


def build(context: DomainContext) -> list[dg.AssetChecksDefinition]:
    """The checks of account_health: its schema, one row per account."""
    partitions = context.health

    @warehouse_check(
        asset="account_health",
        blocking=True,
        partitions=partitions,
        description="The (date, profile) slice of account_health matches its pandera schema.",
    )
    def account_health_schema(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        day, profile = health_partition(context)
        with warehouse.connection(read_only=True) as con:
            rows = query_frame(
                con,
                "SELECT * EXCLUDE (dimension_scores, run_id) FROM account_health WHERE date = ? AND profile = ?",
                [day, profile],
            )
        return schema_check_result(schemas.account_health, rows)

    @warehouse_check(
        asset="account_health",
        partitions=partitions,
        description="Every account has at most one health row on the day, whatever the profile. "
        "Two rows mean the profiles changed and only some of the day's partitions were re-run: "
        "materialise every profile of that day.",
    )
    def one_health_row_per_account(
        context: dg.AssetCheckExecutionContext, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        day, _profile = health_partition(context)
        with warehouse.connection(read_only=True) as con:
            repeated = query_frame(
                con,
                "SELECT account_id, list(profile ORDER BY profile) AS profiles FROM account_health "
                "WHERE date = ? GROUP BY account_id HAVING count(*) > 1 ORDER BY account_id",
                [day],
            )
        return dg.AssetCheckResult(
            passed=repeated.height == 0,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "accounts_with_several_rows": repeated.height,
                **({"examples": dg.MetadataValue.json(repeated.head(5).to_dicts())} if repeated.height else {}),
            },
        )

    return [account_health_schema, one_health_row_per_account]
