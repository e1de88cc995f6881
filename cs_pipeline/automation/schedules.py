"""The daily schedule: at 01:00 UTC, yesterday's daily run (the health runs follow it, see sensors.py)."""

from datetime import datetime, timedelta, timezone

import dagster as dg

from cs_pipeline.assets_common.jobs import AssetJob
from cs_pipeline.assets_common.settings import PipelineSettings, audit_tags

DAILY_SCHEDULE_CRON = "0 1 * * *"


def build_daily_schedule(daily_job: AssetJob) -> dg.ScheduleDefinition:
    """The schedule that runs `daily_job` for yesterday, each day."""
    @dg.schedule(
        cron_schedule=DAILY_SCHEDULE_CRON,
        execution_timezone="UTC",
        job=daily_job,
        name="daily_schedule",
        description="Every day at 01:00 UTC: the daily assets for yesterday (a UTC day is "
        "processed once it is over); when that run succeeds, health_after_daily requests the "
        "health run of every profile, and subaccount_after_health the roll-up of their health.",
    )
    def daily_schedule(context: dg.ScheduleEvaluationContext, settings: PipelineSettings) -> dg.RunRequest:
        day = scheduled_day(context.scheduled_execution_time)
        return dg.RunRequest(run_key=f"daily:{day}", partition_key=day, tags=audit_tags(settings.config))

    return daily_schedule


def scheduled_day(tick: datetime) -> str:
    """The partition a tick materialises: the UTC day before it."""
    return (tick.astimezone(timezone.utc).date() - timedelta(days=1)).isoformat()
