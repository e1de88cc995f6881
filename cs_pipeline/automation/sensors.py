"""Sensors of the daily chain. A new delivery in the landing zone starts its day's daily run
(as the daily schedule does for yesterday); a successful daily run of either starts the
health run of that day, every profile in one run; once it succeeds, the roll-up of the
descendants' health runs.
Runs launched by hand or by a backfill are not followed up: they choose their own assets."""

import hashlib
from datetime import date, datetime, timezone

import dagster as dg

from cs_pipeline.assets_common.shared import RANGE_END_TAG, RANGE_START_TAG, AssetJob, PipelineSettings, audit_tags
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


def health_run_request(config: PipelineConfig, day: str, daily_run_id: str) -> dg.RunRequest:
    """The health run of `day`, every profile in one run (a range of partition keys),
    following the daily run `daily_run_id`."""
    profiles = config.profile_names()
    return dg.RunRequest(
        run_key=f"health:{daily_run_id}",
        tags={
            **audit_tags(config),
            DAILY_RUN_TAG: daily_run_id,
            RANGE_START_TAG: f"{day}|{profiles[0]}",
            RANGE_END_TAG: f"{day}|{profiles[-1]}",
        },
    )


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

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        default_status=dg.DefaultSensorStatus.RUNNING,  # they only follow the schedule's and landing_sensor's runs
        monitored_jobs=[daily_job],
        request_job=health_job,
        description="After a daily run of the daily schedule or the landing sensor: the health "
        "run of its day, every profile in one run.",
    )
    def health_after_daily(
        context: dg.RunStatusSensorContext, settings: PipelineSettings
    ) -> dg.RunRequest | dg.SkipReason:
        run = context.dagster_run
        launched_by = run.tags.get("dagster/schedule_name") or run.tags.get("dagster/sensor_name")
        if launched_by not in ("daily_schedule", "landing_sensor"):
            return dg.SkipReason(f"run {run.run_id} was launched by hand or a backfill")
        return health_run_request(settings.config, run.tags["dagster/partition"], run.run_id)

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        default_status=dg.DefaultSensorStatus.RUNNING,  # they only follow the schedule's and landing_sensor's runs
        monitored_jobs=[health_job],
        request_job=subaccount_job,
        description="When the health run that followed a daily run has succeeded: the "
        "descendants' health and subaccount_health of that day.",
    )
    def subaccount_after_health(
        context: dg.RunStatusSensorContext, settings: PipelineSettings
    ) -> dg.RunRequest | dg.SkipReason:
        run = context.dagster_run
        daily_run_id = run.tags.get(DAILY_RUN_TAG)
        if daily_run_id is None:
            return dg.SkipReason(f"run {run.run_id} did not follow a daily run")
        day = run.tags[RANGE_START_TAG].split("|")[0]
        return dg.RunRequest(run_key=f"subaccount:{daily_run_id}", partition_key=day, tags=audit_tags(settings.config))

    return [landing_sensor, health_after_daily, subaccount_after_health]
