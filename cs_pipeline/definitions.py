"""The code location: assembles the domain packages for the configured tenant."""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from types import ModuleType
from typing import Any

import dagster as dg

from cs_pipeline.assets_common.declare import TRANSIENT_RETRIES
from cs_pipeline.assets_common.jobs import DAILY_JOB, HEALTH_JOB, LAB_JOB, SUBACCOUNT_JOB
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyAsset, DailyCheck, build_range_step
from cs_pipeline.assets_common.settings import PipelineSettings, audit_tags
from cs_pipeline.automation.schedules import build_daily_schedule
from cs_pipeline.automation.sensors import build_sensors
from cs_pipeline.config import PipelineConfig, load_config
from cs_pipeline.lab.simulate_job import build_simulate_job
from cs_pipeline.warehouse import WarehouseResource

# The domain packages, in the order their assets are listed. Each has an assets.py with
# build(context) -> its daily work (range_step.DailyAsset) and assets of its own (the
# Salesforce mirrors, the health lab's backtest), and, optionally, JOB (the job they run in;
# DAILY_JOB when absent); a checks.py with build(context) -> checks (range_step.DailyCheck),
# evaluated in their asset's step; a resources.py with build(config) -> {resource key: resource}.
DOMAINS = ("crm", "usage", "metrics", "lifecycle", "health", "rollups", "lab")

# Each job is one step materialising its partitions in order (range_step.build_range_step):
# its name, and what it does.
STEPS = {
    DAILY_JOB: (
        "daily_assets",
        "Every daily asset before health, day after day over the run's days: CRM snapshot, usage "
        "events, accounts, users, status history, metrics and roll-ups, retention, each blocking "
        "check right after its asset.",
    ),
    HEALTH_JOB: (
        "account_health",
        "account_health for the run's (date, profile) partitions, date after date.",
    ),
    SUBACCOUNT_JOB: ("subaccount_health", "subaccount_health for the run's days, after every profile's health."),
}

# Partitioned asset checks are marked preview in Dagster 1.13; the checks rely on them on purpose.
warnings.filterwarnings("ignore", "Specifying a partitions_def on an AssetCheckSpec", dg.PreviewWarning)
# account_health depends on its day before through a MultiPartitionMapping, beta in Dagster 1.13.
warnings.filterwarnings("ignore", "Class `MultiPartitionMapping` is currently in beta", dg.BetaWarning)

__all__ = ["DOMAINS", "build_definitions", "defs"]


def _domain_module(domain: str, name: str) -> ModuleType | None:
    """cs_pipeline.<domain>.<name>, or None when the domain has no such module."""
    module = f"cs_pipeline.{domain}.{name}"
    if importlib.util.find_spec(module) is None:
        return None
    return importlib.import_module(module)


def build_definitions(config: PipelineConfig) -> dg.Definitions:
    """The code location for `config`: every asset, check, job, schedule, sensor and resource."""
    context = DomainContext.of(config)
    work_by_job: dict[str, list[DailyAsset]] = {job: [] for job in STEPS}
    own_assets: dict[str, list[dg.AssetsDefinition]] = {job: [] for job in (*STEPS, LAB_JOB)}
    checks: list[DailyCheck] = []
    resources: dict[str, Any] = {
        "settings": PipelineSettings(config_path=str(config.source_path)),
        "warehouse": WarehouseResource(
            path=str(config.warehouse),
            published=str(config.published),
            lock_timeout_seconds=config.timeouts.warehouse_lock_seconds,
        ),
    }
    for domain in DOMAINS:
        assets = _domain_module(domain, "assets")
        for built in assets.build(context):
            if isinstance(built, DailyAsset):
                work_by_job[getattr(assets, "JOB", DAILY_JOB)].append(built)
            else:
                own_assets[getattr(assets, "JOB", DAILY_JOB)].append(built)
        if domain_checks := _domain_module(domain, "checks"):
            checks += domain_checks.build(context)
        if domain_resources := _domain_module(domain, "resources"):
            resources |= domain_resources.build(config)
    steps = {job: _job_step(job, work, checks, context) for job, work in work_by_job.items()}
    # however a run of these jobs starts (UI, schedule, sensor, CLI), it records the config's hash;
    # in process: the steps share the duckdb pool one at a time anyway, a process each buys nothing
    tags = audit_tags(config)
    daily_job, health_job, subaccount_job, lab_job = (
        dg.define_asset_job(
            job,
            selection=dg.AssetSelection.assets(*([steps[job]] if job in steps else []), *own),
            tags=tags,
            executor_def=dg.in_process_executor,
        )
        for job, own in own_assets.items()
    )
    return dg.Definitions(
        assets=[*(asset for own in own_assets.values() for asset in own), *steps.values()],
        # the simulation of a draft (docs/health-lab.md#simulation): a job of one op, no asset
        jobs=[daily_job, health_job, subaccount_job, lab_job, build_simulate_job(config)],
        schedules=[build_daily_schedule(daily_job)],
        sensors=build_sensors(context.daily, daily_job, health_job, subaccount_job),
        resources=resources,
    )


def _job_step(
    job: str, work: list[DailyAsset], checks: list[DailyCheck], context: DomainContext
) -> dg.AssetsDefinition:
    """The one step of `job`: its domains' daily work and the checks of its assets."""
    name, description = STEPS[job]
    keys = {key for unit in work for key in unit.keys}
    return build_range_step(
        name,
        work,
        [check for check in checks if check.spec.asset_key in keys],
        context.health if job == HEALTH_JOB else context.daily,
        # crm_snapshot reads the CRM source (a source may be briefly away); others the warehouse only
        resource_keys={"crm"} if job == DAILY_JOB else set(),
        retry_policy=TRANSIENT_RETRIES if job == DAILY_JOB else None,
        description=description,
    )


defs = build_definitions(load_config())
