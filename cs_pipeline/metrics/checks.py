"""Blocking schema check on the day's account_metrics rows."""

from cs_pipeline import schemas
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyCheck
from cs_pipeline.assets_common.schema_checks import schema_check


def build(context: DomainContext) -> list[DailyCheck]:
    """The schema check of account_metrics."""
    return [
        schema_check(
            "account_metrics",
            schemas.account_metrics,
            description="The day's account_metrics rows match their pandera schema (one row per "
            "account, counts >= 0, nested windows ordered, engagement 0-100 for Free/Paying only).",
        )
    ]
