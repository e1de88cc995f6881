"""Checks on account_health: the slice's schema (blocking) and one row per account and day."""

import dagster as dg

from cs_pipeline import schemas
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyCheck, Day, daily_check
from cs_pipeline.assets_common.schema_checks import schema_check
from cs_pipeline.warehouse import query_frame


def build(context: DomainContext) -> list[DailyCheck]:
    """The checks of account_health: its schema, one row per account."""
    account_health_schema = schema_check(
        "account_health",
        schemas.account_health,
        description="The (date, profile) slice of account_health matches its pandera schema.",
    )

    @daily_check(
        asset="account_health",
        per_date=True,  # after every profile of the date in the run
        description="Every account has at most one health row on the day, whatever the profile. "
        "Two rows mean the profiles changed and only some of the day's partitions were re-run: "
        "materialise every profile of that day.",
    )
    def one_health_row_per_account(day: Day) -> dg.AssetCheckResult:
        with day.warehouse.connection(read_only=True) as con:
            repeated = query_frame(
                con,
                "SELECT account_id, list(profile ORDER BY profile) AS profiles FROM account_health "
                "WHERE date = ? GROUP BY account_id HAVING count(*) > 1 ORDER BY account_id",
                [day.date],
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
