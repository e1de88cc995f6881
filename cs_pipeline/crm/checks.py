"""Blocking schema checks on the CRM tables: a failure stops everything downstream."""

import dagster as dg
import polars as pl

from cs_pipeline import schemas
from cs_pipeline.assets_common.declare import warehouse_check
from cs_pipeline.assets_common.shared import DomainContext, schema_check_result
from cs_pipeline.crm.hierarchy import ATTRIBUTES_TYPE
from cs_pipeline.warehouse import WarehouseResource, query_frame


def _stored(warehouse: WarehouseResource, table: str) -> pl.DataFrame:
    with warehouse.connection(read_only=True) as con:
        return query_frame(con, f"SELECT * EXCLUDE (run_id) FROM {table}")


def build(context: DomainContext) -> list[dg.AssetChecksDefinition]:
    """The schema checks of the CRM assets."""
    daily = context.daily

    @warehouse_check(
        asset="accounts",
        blocking=True,
        partitions=daily,
        description="accounts and hierarchy_issues match their pandera schemas.",
    )
    def accounts_schema(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        stored = _stored(warehouse, "accounts").with_columns(pl.col("attributes").cast(ATTRIBUTES_TYPE))
        result = schema_check_result(schemas.accounts, stored)
        issues = schema_check_result(schemas.hierarchy_issues, _stored(warehouse, "hierarchy_issues"))
        return result if not result.passed else issues

    @warehouse_check(
        asset="users",
        blocking=True,
        partitions=daily,
        description="users matches its pandera schema.",
    )
    def users_schema(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return schema_check_result(schemas.users, _stored(warehouse, "users"))

    return [accounts_schema, users_schema]
