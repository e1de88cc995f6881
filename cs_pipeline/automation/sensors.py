"""Sensors of the daily chain. A new delivery in the landing zone starts its day's daily run
(as the daily schedule does for yesterday); a successful daily run of either starts the
health run of that day, every profile in one run; once it succeeds, the roll-up of the
descendants' health runs.
Runs launched by hand or by a backfill are not followed up: they choose their own assets."""

import hashlib
from collections.abc import Callable
from datetime import date, datetime, timezone

import dagster as dg

from cs_pipeline.assets_common.jobs import RANGE_END_TAG, RANGE_START_TAG, AssetJob
from cs_pipeline.assets_common.settings import PipelineSettings, audit_tags
from cs_pipeline.config import PipelineConfig
from cs_pipeline.usage.landing import list_delivery

# Deliveries for days further back are backfills, launched on purpose (UI or CLI), not by a sensor.
LANDING_LOOKBACK_DAYS = 7
DAILY_RUN_TAG = "cs_pipeline/daily_run_id"  # on health runs: the daily run they follow


def delivery_signature(config: PipelineConfig, day: date) -> str | None:
    """A short hash of the usage files delivered for `day` (names, sizes, modification
    times), None without any: a new or changed file gives a new signature."""
    files = list_delivery(config.landing, day).files
    if not files:
        return None
    stats = [(path.name, path.stat().st_size, path.stat().st_mtime_ns) for path in files]
    return hashlib.sha256(repr(stats).encode()).hexdigest()[:16]


def landing_run_requests(
    config: PipelineConfig, daily: dg.DailyPartitionsDefinition, now: datetime
) -> list[dg.RunRequest]:
    """A daily run for each of the last finished days whose delivery is new or changed (the
    run key carries the delivery's signature, so each version of a delivery runs once)."""
    recent = daily.get_partition_keys(current_time=now)[-LANDING_LOOKBACK_DAYS:]
    signatures = {key: delivery_signature(config, date.fromisoformat(key)) for key in recent}
    return [
        dg.RunRequest(run_key=f"landing:{key}:{signature}", partition_key=key, tags=audit_tags(config))
        for key, signature in signatures.items()
        if signature is not None
    ]


def health_after_daily(config: PipelineConfig, daily_run: dg.DagsterRun) -> dg.RunRequest | dg.SkipReason:
    """The health run of a daily run's day, every profile in one run (a range of partition
    keys), when the daily schedule or the landing sensor launched it."""
    launched_by = daily_run.tags.get("dagster/schedule_name") or daily_run.tags.get("dagster/sensor_name")
    if launched_by not in ("daily_schedule", "landing_sensor"):
        return dg.SkipReason(f"run {daily_run.run_id} was launched by hand or a backfill")
    day, profiles = daily_run.tags["dagster/partition"], config.profile_names()
    return dg.RunRequest(
        run_key=f"health:{daily_run.run_id}",
        tags={
            **audit_tags(config),
            DAILY_RUN_TAG: daily_run.run_id,
            RANGE_START_TAG: f"{day}|{profiles[0]}",
            RANGE_END_TAG: f"{day}|{profiles[-1]}",
        },
    )


def subaccount_after_health(config: PipelineConfig, health_run: dg.DagsterRun) -> dg.RunRequest | dg.SkipReason:
    """The subaccount health run of a health run's day, when that health run followed a daily run."""
    daily_run_id = health_run.tags.get(DAILY_RUN_TAG)
    if daily_run_id is None:
        return dg.SkipReason(f"run {health_run.run_id} did not follow a daily run")
    day = health_run.tags[RANGE_START_TAG].split("|")[0]
    return dg.RunRequest(run_key=f"subaccount:{daily_run_id}", partition_key=day, tags=audit_tags(config))


FollowUp = Callable[[PipelineConfig, dg.DagsterRun], dg.RunRequest | dg.SkipReason]


def follow_up_sensor(
    follow_up: FollowUp, monitored_job: AssetJob, request_job: AssetJob, *, description: str
) -> dg.SensorDefinition:
    """The sensor, named after `follow_up`, that asks `follow_up` what to run of `request_job`
    after each successful run of `monitored_job`. Running by default: the follow-ups skip any run
    the daily chain did not launch."""

    @dg.run_status_sensor(
        name=follow_up.__name__,
        run_status=dg.DagsterRunStatus.SUCCESS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        monitored_jobs=[monitored_job],
        request_job=request_job,
        description=description,
    )
    def sensor(context: dg.RunStatusSensorContext, settings: PipelineSettings) -> dg.RunRequest | dg.SkipReason:
        return follow_up(settings.config, context.dagster_run)

    return sensor


def build_sensors(
    daily: dg.DailyPartitionsDefinition,
    daily_job: AssetJob,
    health_job: AssetJob,
    subaccount_job: AssetJob,
) -> list[dg.SensorDefinition]:
    """The sensors: the daily job when a delivery lands, the health job after it, subaccount health after that."""

    @dg.sensor(
        job=daily_job,
        minimum_interval_seconds=300,
        description=f"Notices a new or changed <landing>/usage/date=D/ folder (D among the last "
        f"{LANDING_LOOKBACK_DAYS} finished UTC days) and runs the daily assets for D.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext, settings: PipelineSettings) -> list[dg.RunRequest]:
        return landing_run_requests(settings.config, daily, datetime.now(timezone.utc))

    return [
        landing_sensor,
        follow_up_sensor(
            health_after_daily,
            daily_job,
            health_job,
            description="After a daily run of the daily schedule or the landing sensor: the health "
            "run of its day, every profile in one run.",
        ),
        follow_up_sensor(
            subaccount_after_health,
            health_job,
            subaccount_job,
            description="When the health run that followed a daily run has succeeded: the "
            "descendants' health and subaccount_health of that day.",
        ),
    ]
