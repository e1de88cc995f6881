"""Blocking schema checks on the CRM tables: a failure stops everything downstream."""

import dagster as dg
import polars as pl

from cs_pipeline import schemas
from cs_pipeline.assets_common.range_step import DailyCheck, Day, daily_check
from cs_pipeline.assets_common.shared import DomainContext, schema_check_result
from cs_pipeline.crm.hierarchy import ATTRIBUTES_TYPE
from cs_pipeline.warehouse import query_frame


def _stored(day: Day, table: str) -> pl.DataFrame:
    with day.warehouse.connection(read_only=True) as con:
        return query_frame(con, f"SELECT * EXCLUDE (run_id) FROM {table}")


def build(context: DomainContext) -> list[DailyCheck]:
    """The schema checks of the CRM assets."""

    @daily_check(
        asset="accounts",
        blocking=True,
        description="accounts and hierarchy_issues match their pandera schemas.",
    )
    def accounts_schema(day: Day) -> dg.AssetCheckResult:
        stored = _stored(day, "accounts").with_columns(pl.col("attributes").cast(ATTRIBUTES_TYPE))
        result = schema_check_result(schemas.accounts, stored)
        issues = schema_check_result(schemas.hierarchy_issues, _stored(day, "hierarchy_issues"))
        return result if not result.passed else issues

    @daily_check(asset="users", blocking=True, description="users matches its pandera schema.")
    def users_schema(day: Day) -> dg.AssetCheckResult:
        return schema_check_result(schemas.users, _stored(day, "users"))

    return [accounts_schema, users_schema]
