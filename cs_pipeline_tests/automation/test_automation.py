"""The daily schedule and the sensors of the daily chain, on a real instance and warehouse:
a tick asks for yesterday; the daily run it starts is followed by the day's health run (every
profile in one run), and that by the subaccount health run."""

from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from cs_pipeline.assets_common.jobs import DAILY_JOB, HEALTH_JOB, RANGE_END_TAG, RANGE_START_TAG
from cs_pipeline.assets_common.partitions import daily_partitions
from cs_pipeline.assets_common.settings import PipelineSettings
from cs_pipeline.automation.sensors import (
    DAILY_RUN_TAG,
    health_after_daily,
    landing_run_requests,
    subaccount_after_health,
)
from cs_pipeline.config import load_config
from cs_pipeline.definitions import build_definitions
from cs_pipeline_tests.support.tenant import CONFIG, write_events_csv

TWO_PROFILES = CONFIG.replace(
    "profiles:\n",
    "profiles:\n  - name: onboarding\n    when: [{metric: account_age_days, op: '<', value: 30}]\n"
    "    good: [{metric: active_users_7d, op: '>=', value: 1}]\n",
)


@pytest.fixture
def tenant_config() -> str:
    """The appendix tenant's config with a second profile, `onboarding`, before `default`."""
    return TWO_PROFILES


@pytest.fixture
def tenant_deliveries() -> dict[str, list[dict[str, str]]]:
    return {"2025-11-20": [
        {"event_id": "e1", "ts": "2025-11-20T10:00:00Z", "account_id": "XYZ", "user_id": "ann@acme.com",
         "action": "Login"},
    ]}  # fmt: skip


@pytest.fixture
def config_path(tenant_files):
    """conftest.py's `tenant_files`: no DAGSTER_HOME, each test makes its instance."""
    return tenant_files


def test_a_tick_asks_for_yesterday_in_utc(config_path):
    defs = build_definitions(load_config(config_path))
    schedule = defs.resolve_schedule_def("daily_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 1 * * *", "UTC")
    # 01:00 UTC on the 21st is still the 20th in New York: the day is the UTC one before the tick
    tick = datetime(2025, 11, 21, 1, 0, tzinfo=timezone.utc)
    with dg.build_schedule_context(
        scheduled_execution_time=tick,
        resources={"settings": PipelineSettings(config_path=str(config_path))},
        repository_def=defs.get_repository_def(),
    ) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    assert (request.job_name or schedule.job_name, request.partition_key) == (DAILY_JOB, "2025-11-20")
    assert request.run_key == "daily:2025-11-20"
    assert request.tags["cs_pipeline/config_sha256"] == load_config(config_path).config_hash()


def after_success(
    defs: dg.Definitions,
    sensor_name: str,
    instance: dg.DagsterInstance,
    run: dg.ExecuteInProcessResult,
    config_path: Path,
):
    """What run-status sensor `sensor_name` returns for the success of `run` (an execute_in_process result)."""
    [record] = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS).records
    context = dg.build_run_status_sensor_context(
        sensor_name=sensor_name,
        dagster_event=record.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run.dagster_run,
        resources={"settings": PipelineSettings(config_path=str(config_path))},
    )
    return defs.resolve_sensor_def(sensor_name)(context)


@pytest.mark.e2e
def test_the_daily_run_is_followed_by_one_health_run_of_every_profile_then_the_subaccount_run(config_path):
    defs = build_definitions(load_config(config_path))
    with dg.instance_for_test() as instance:
        daily = defs.resolve_job_def(DAILY_JOB).execute_in_process(
            partition_key="2025-11-20", instance=instance, tags={"dagster/schedule_name": "daily_schedule"}
        )
        request = after_success(defs, "health_after_daily", instance, daily, config_path)
        # the two profiles in config order: onboarding first, default last
        assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG], request.tags[DAILY_RUN_TAG]) == (
            "2025-11-20|onboarding",
            "2025-11-20|default",
            daily.run_id,
        )

        health = defs.resolve_job_def(HEALTH_JOB).execute_in_process(instance=instance, tags=request.tags)
        assert sorted(event.materialization.partition for event in health.get_asset_materialization_events()) == [
            "2025-11-20|default",
            "2025-11-20|onboarding",
        ]
        follow_up = after_success(defs, "subaccount_after_health", instance, health, config_path)
        assert (follow_up.partition_key, follow_up.run_key) == ("2025-11-20", f"subaccount:{daily.run_id}")


@pytest.mark.e2e
def test_a_daily_run_launched_by_hand_is_not_followed_up(config_path):
    defs = build_definitions(load_config(config_path))
    with dg.instance_for_test() as instance:
        daily = defs.resolve_job_def(DAILY_JOB).execute_in_process(partition_key="2025-11-20", instance=instance)
        assert isinstance(after_success(defs, "health_after_daily", instance, daily, config_path), dg.SkipReason)


def test_landing_sensor_runs_each_new_or_changed_delivery_of_the_last_days(config_path):
    config = load_config(config_path)
    daily = daily_partitions(config)
    landing = config_path.parent / "landing"
    write_events_csv(landing, "2025-11-05", "old.csv", [])  # beyond the 7 days looked at
    write_events_csv(landing, "2025-11-21", "a.csv", [])
    (landing / "usage" / "date=2025-11-19").mkdir()  # a folder without files: nothing delivered yet
    now = datetime(2025, 11, 22, 6, 0, tzinfo=timezone.utc)

    first = landing_run_requests(config, daily, now)
    assert [r.partition_key for r in first] == ["2025-11-20", "2025-11-21"]
    assert landing_run_requests(config, daily, now) == first  # same files, same run keys: no new run
    write_events_csv(landing, "2025-11-21", "b.csv", [])
    second = landing_run_requests(config, daily, now)
    assert second[0].run_key == first[0].run_key and second[1].run_key != first[1].run_key


def test_the_follow_ups_skip_runs_the_daily_chain_did_not_launch(config_path):
    config = load_config(config_path)
    by_hand = dg.DagsterRun(job_name=DAILY_JOB, run_id="daily-1", tags={"dagster/partition": "2025-11-20"})
    assert health_after_daily(config, by_hand) == dg.SkipReason("run daily-1 was launched by hand or a backfill")
    backfilled = dg.DagsterRun(job_name=HEALTH_JOB, run_id="health-1", tags={RANGE_START_TAG: "2025-11-20|onboarding"})
    assert subaccount_after_health(config, backfilled) == dg.SkipReason("run health-1 did not follow a daily run")


def test_the_follow_ups_of_a_landing_sensor_run_name_its_day_and_the_daily_run(config_path):
    config = load_config(config_path)
    daily = dg.DagsterRun(
        job_name=DAILY_JOB,
        run_id="daily-1",
        tags={"dagster/partition": "2025-11-20", "dagster/sensor_name": "landing_sensor"},
    )
    health = health_after_daily(config, daily)
    assert health.run_key == "health:daily-1"
    assert {name: health.tags[name] for name in (RANGE_START_TAG, RANGE_END_TAG, DAILY_RUN_TAG)} == {
        RANGE_START_TAG: "2025-11-20|onboarding",
        RANGE_END_TAG: "2025-11-20|default",
        DAILY_RUN_TAG: "daily-1",
    }
    health_run = dg.DagsterRun(job_name=HEALTH_JOB, run_id="health-1", tags=health.tags)
    subaccount = subaccount_after_health(config, health_run)
    assert (subaccount.run_key, subaccount.partition_key) == ("subaccount:daily-1", "2025-11-20")
    assert subaccount.tags["cs_pipeline/config_sha256"] == config.config_hash()
