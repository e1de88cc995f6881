"""Blocking schema check on the partition's usage rows: a failure stops everything downstream."""

import dagster as dg

from cs_pipeline import schemas
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyCheck, Day, daily_check
from cs_pipeline.assets_common.schema_checks import stored_rows_verdict
from cs_pipeline.usage.ingest import duplicate_event_ids

# event_id uniqueness is tested in DuckDB (a hash aggregate there is several times cheaper
# than Polars' on millions of strings); pandera checks every other rule of the schema.
USAGE_EVENTS_BUT_UNIQUENESS = schemas.usage_events.update_column("event_id", unique=False)


def build(context: DomainContext) -> list[DailyCheck]:
    """The schema check of usage_events: event_id uniqueness in DuckDB, then the generated schema check."""

    @daily_check(
        asset="usage_events",
        blocking=True,
        description="The partition's usage_events and rejected_events rows match their pandera "
        "schemas; its event_ids are unique.",
    )
    def usage_events_schema(day: Day) -> dg.AssetCheckResult:
        with day.warehouse.connection(read_only=True) as con:
            duplicates = duplicate_event_ids(con, day.date)
        if duplicates:
            return dg.AssetCheckResult(
                passed=False, metadata={"table": "usage_events", "duplicate_event_ids": ", ".join(duplicates)}
            )
        return stored_rows_verdict(day, [USAGE_EVENTS_BUT_UNIQUENESS, schemas.rejected_events])

    return [usage_events_schema]
