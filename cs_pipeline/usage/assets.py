"""Usage assets: one day's delivery from the landing zone into `usage_events`."""

import dagster as dg

from cs_pipeline.assets_common.declare import materialization
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyAsset, Day, daily_asset
from cs_pipeline.usage.ingest import ingest_delivery
from cs_pipeline.usage.landing import LandingFileError


def build(context: DomainContext) -> list[DailyAsset]:
    """The usage_events asset, partitioned by delivery day."""

    @daily_asset(
        group="usage",
        kinds={"parquet"},
        description="The events delivered to <landing>/usage/date=D/ (parquet, jsonl, jsonl.gz, "
        "csv), normalised and deduplicated by event_id across days; bad rows go to "
        "rejected_events with their reason.",
    )
    def usage_events(day: Day) -> dg.MaterializeResult:
        config = day.config
        with day.warehouse.connection() as con:
            try:
                result = ingest_delivery(
                    con,
                    landing=config.landing,
                    partition_date=day.date,
                    module_limit=config.limits.modules,
                    action_limit=config.limits.actions,
                    run_id=day.run_id,
                )
            except LandingFileError as exc:  # the message names the file and what is wrong with it
                raise dg.Failure(str(exc), allow_retries=False) from None
            materialized = materialization(
                con,
                "usage_events",
                result.events_stored,
                {
                    "files": result.files,
                    "files_ignored": len(result.files_ignored),
                    "rows_read": result.rows_read,
                    "rows_written": result.events_stored,
                    "rows_rejected": result.rows_rejected,
                    **{f"rejected_{reason}": count for reason, count in result.rejected.items()},
                    "duplicates": result.duplicates,
                    "purged_by_retention": result.purged_by_retention,
                    "late_events": result.late_events,
                    "moved_beyond_limits": result.moved_beyond_limits,
                    "readmitted_within_limits": result.readmitted_within_limits,
                },
                where="partition_date = ?",
                params=[day.date],
            )
        on = day.date
        if result.files == 0:
            day.log.warning(f"no usage files delivered for {on} (looked in {config.landing}/usage/date={on})")
        if result.files_ignored:
            day.log.warning(f"ignored files for {on} (not a usage format): {', '.join(result.files_ignored)}")
        if result.rows_rejected:
            day.log.warning(f"{result.rows_rejected} rows of {on} rejected: {result.rejected}")
        return materialized

    return [usage_events]
