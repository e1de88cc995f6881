"""A range step (assets_common/range_step.py) run for real by Dagster over three days: each day's
work in dependency order with each check right after its asset, each partition's own metadata
and check evaluation; a blocking check failing on the second day stops the step there."""

from __future__ import annotations

from datetime import date

import dagster as dg
import pytest

from cs_pipeline.assets_common.jobs import RANGE_END_TAG, RANGE_START_TAG
from cs_pipeline.assets_common.partitions import daily_partitions
from cs_pipeline.assets_common.range_step import Day, build_range_step, daily_asset, daily_check
from cs_pipeline.assets_common.settings import PipelineSettings
from cs_pipeline.config import load_config
from cs_pipeline.warehouse import WarehouseResource

pytestmark = pytest.mark.e2e
DAYS = ("2025-11-03", "2025-11-05")


def range_job(config_path, calls: list[str], failing_day: date | None) -> dg.JobDefinition:
    """A step of `second` (declared first) after `first`, `first` checked (blocking) each day;
    `calls` records what ran, in order; the check fails on `failing_day`."""

    @daily_asset(group="test", description="depends on first", deps=["first"])
    def second(day: Day) -> dg.MaterializeResult:
        calls.append(f"second {day.date}")
        return dg.MaterializeResult(metadata={"day_of_month": day.date.day}, data_version=dg.DataVersion("s"))

    @daily_asset(group="test", description="first")
    def first(day: Day) -> dg.MaterializeResult:
        calls.append(f"first {day.date}")
        return dg.MaterializeResult(metadata={"day_of_month": day.date.day}, data_version=dg.DataVersion("f"))

    @daily_check(asset="first", blocking=True, description="fails on failing_day")
    def first_ok(day: Day) -> dg.AssetCheckResult:
        calls.append(f"check {day.date}")
        return dg.AssetCheckResult(passed=day.date != failing_day, metadata={"rows_checked": day.date.day})

    config = load_config(config_path)
    step = build_range_step("test_step", [second, first], [first_ok], daily_partitions(config), description="test")
    defs = dg.Definitions(
        assets=[step],
        jobs=[dg.define_asset_job("test_job", selection=[step], executor_def=dg.in_process_executor)],
        resources={
            "settings": PipelineSettings(config_path=str(config_path)),
            "warehouse": WarehouseResource(path=str(config.warehouse), published=str(config.published)),
        },
    )
    return defs.resolve_job_def("test_job")


def run_range(job: dg.JobDefinition, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return job.execute_in_process(
        instance=instance, raise_on_error=False, tags={RANGE_START_TAG: DAYS[0], RANGE_END_TAG: DAYS[1]}
    )


def test_a_range_step_works_day_after_day_and_records_each_partition(tenant_files):
    calls: list[str] = []
    with dg.instance_for_test() as instance:
        result = run_range(range_job(tenant_files, calls, failing_day=None), instance)
        assert result.success
        assert calls == [
            "first 2025-11-03", "check 2025-11-03", "second 2025-11-03",
            "first 2025-11-04", "check 2025-11-04", "second 2025-11-04",
            "first 2025-11-05", "check 2025-11-05", "second 2025-11-05",
        ]  # fmt: skip
        for asset in ("first", "second"):
            records = instance.fetch_materializations(dg.AssetKey(asset), limit=10).records
            assert {r.partition_key: r.asset_materialization.metadata["day_of_month"].value for r in records} == {
                "2025-11-03": 3, "2025-11-04": 4, "2025-11-05": 5
            }  # fmt: skip
            # each partition's work timed: a number the UI plots
            assert all(r.asset_materialization.metadata["seconds"].value >= 0 for r in records)
        checks = instance.event_log_storage.get_asset_check_execution_history(
            dg.AssetCheckKey(dg.AssetKey("first"), "first_ok"), limit=10
        )
        assert sorted((c.partition, c.status.value) for c in checks) == [
            ("2025-11-03", "SUCCEEDED"), ("2025-11-04", "SUCCEEDED"), ("2025-11-05", "SUCCEEDED")
        ]  # fmt: skip


def test_a_blocking_check_failing_on_a_day_stops_the_step_there(tenant_files):
    calls: list[str] = []
    with dg.instance_for_test() as instance:
        result = run_range(range_job(tenant_files, calls, failing_day=date(2025, 11, 4)), instance)
        assert not result.success
        # nothing after the failed check: not the second asset of the 4th, not the 5th
        assert calls == ["first 2025-11-03", "check 2025-11-03", "second 2025-11-03", "first 2025-11-04",
                         "check 2025-11-04"]  # fmt: skip
        [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
        error = failure.step_failure_data.error
        message = (error.cause or error).message
        assert "blocking check first_ok of first failed for 2025-11-04" in message
        assert instance.fetch_materializations(dg.AssetKey("first"), limit=10).records == []
        [failed] = [
            c
            for c in instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(dg.AssetKey("first"), "first_ok"), limit=10
            )
            if c.status.value == "FAILED"
        ]
        assert failed.partition == "2025-11-04"
