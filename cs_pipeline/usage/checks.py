"""Blocking schema checks on the partition's usage rows: a failure stops everything downstream."""

import dagster as dg

from cs_pipeline import schemas
from cs_pipeline.assets_common.range_step import DailyCheck, Day, daily_check
from cs_pipeline.assets_common.shared import DomainContext, schema_check_result
from cs_pipeline.usage.ingest import duplicate_event_ids, stored_events, stored_rejected

# event_id uniqueness is tested in DuckDB (a hash aggregate there is several times cheaper
# than Polars' on millions of strings); pandera checks every other rule of the schema.
USAGE_EVENTS_BUT_UNIQUENESS = schemas.usage_events.update_column("event_id", unique=False)


def build(context: DomainContext) -> list[DailyCheck]:
    """The schema check of usage_events."""

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
                [(rows,)] = con.execute(
                    "SELECT count(*) FROM usage_events WHERE partition_date = ?", [day.date]
                ).fetchall()
                return dg.AssetCheckResult(
                    passed=False, metadata={"rows_checked": rows, "duplicate_event_ids": ", ".join(duplicates)}
                )
            # batch by batch: the 2 million events of a day as one frame would add about 0.4 GB to the peak
            result = schema_check_result(USAGE_EVENTS_BUT_UNIQUENESS, stored_events(con, day.date))
            if not result.passed:
                return result
            return schema_check_result(schemas.rejected_events, stored_rejected(con, day.date))

    return [usage_events_schema]
