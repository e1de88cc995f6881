"""Blocking schema check on the day's account_metrics rows."""

import dagster as dg

from cs_pipeline import schemas
from cs_pipeline.assets_common.range_step import DailyCheck, Day, daily_check
from cs_pipeline.assets_common.shared import DomainContext, schema_check_result
from cs_pipeline.warehouse import query_frame


def build(context: DomainContext) -> list[DailyCheck]:
    """The schema check of account_metrics."""

    @daily_check(
        asset="account_metrics",
        blocking=True,
        description="The day's account_metrics rows match their pandera schema (one row per "
        "account, counts >= 0, nested windows ordered, engagement 0-100 for Free/Paying only).",
    )
    def account_metrics_schema(day: Day) -> dg.AssetCheckResult:
        with day.warehouse.connection(read_only=True) as con:
            rows = query_frame(
                con, "SELECT * EXCLUDE (attributes, run_id) FROM account_metrics WHERE date = ?", [day.date]
            )
        return schema_check_result(schemas.account_metrics, rows)

    return [account_metrics_schema]
