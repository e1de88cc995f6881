"""Blocking schema checks on the CRM tables: a failure stops everything downstream."""

from cs_pipeline import schemas
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyCheck
from cs_pipeline.assets_common.schema_checks import schema_check


def build(context: DomainContext) -> list[DailyCheck]:
    """The schema checks of the CRM assets."""
    return [
        schema_check(
            "accounts",
            schemas.accounts,
            schemas.hierarchy_issues,
            description="accounts and hierarchy_issues match their pandera schemas.",
        ),
        schema_check("users", schemas.users, description="users matches its pandera schema."),
    ]
