"""The code location: assembles the domain packages for the configured tenant."""

from __future__ import annotations

import importlib
import importlib.util
import warnings
from types import ModuleType
from typing import Any

import dagster as dg

from cs_pipeline.assets_common.shared import (
    DAILY_JOB,
    HEALTH_JOB,
    LAB_JOB,
    SUBACCOUNT_JOB,
    DomainContext,
    PipelineSettings,
    audit_tags,
)
from cs_pipeline.automation.schedules import build_daily_schedule
from cs_pipeline.automation.sensors import build_sensors
from cs_pipeline.config import PipelineConfig, load_config
from cs_pipeline.lab.simulate_job import build_simulate_job
from cs_pipeline.warehouse import WarehouseResource

# The domain packages, in the order their assets are listed. Each has an assets.py with
# build(context) -> assets and, optionally, JOB (the job its assets run in; DAILY_JOB when
# absent); a checks.py with build(context) -> asset checks; a resources.py with
# build(config) -> {resource key: resource}.
DOMAINS = ("crm", "usage", "metrics", "lifecycle", "health", "rollups", "lab")

# Partitioned asset checks are marked preview in Dagster 1.13; the checks rely on them on purpose.
warnings.filterwarnings("ignore", "Specifying a partitions_def on an AssetCheckSpec", dg.PreviewWarning)
# account_health depends on its day before through a MultiPartitionMapping, beta in Dagster 1.13.
warnings.filterwarnings("ignore", "Class `MultiPartitionMapping` is currently in beta", dg.BetaWarning)

__all__ = ["DAILY_JOB", "DOMAINS", "HEALTH_JOB", "LAB_JOB", "SUBACCOUNT_JOB", "build_definitions", "defs"]


def _domain_module(domain: str, name: str) -> ModuleType | None:
    """cs_pipeline.<domain>.<name>, or None when the domain has no such module."""
    module = f"cs_pipeline.{domain}.{name}"
    if importlib.util.find_spec(module) is None:
        return None
    return importlib.import_module(module)


def build_definitions(config: PipelineConfig) -> dg.Definitions:
    """The code location for `config`: every asset, check, job, schedule, sensor and resource."""
    context = DomainContext.of(config)
    assets_by_job: dict[str, list[dg.AssetsDefinition]] = {
        DAILY_JOB: [],
        HEALTH_JOB: [],
        SUBACCOUNT_JOB: [],
        LAB_JOB: [],
    }
    checks: list[dg.AssetChecksDefinition] = []
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
        assets_by_job[getattr(assets, "JOB", DAILY_JOB)] += assets.build(context)
        if domain_checks := _domain_module(domain, "checks"):
            checks += domain_checks.build(context)
        if domain_resources := _domain_module(domain, "resources"):
            resources |= domain_resources.build(config)
    # however a run of these jobs starts (UI, schedule, sensor, CLI), it records the config's hash
    tags = audit_tags(config)
    daily_job, health_job, subaccount_job, lab_job = (
        dg.define_asset_job(job, selection=dg.AssetSelection.assets(*assets), tags=tags)
        for job, assets in assets_by_job.items()
    )
    return dg.Definitions(
        assets=[asset for assets in assets_by_job.values() for asset in assets],
        asset_checks=checks,
        # the simulation of a draft (docs/health-lab.md#simulation): a job of one op, no asset
        jobs=[daily_job, health_job, subaccount_job, lab_job, build_simulate_job(config)],
        schedules=[build_daily_schedule(daily_job)],
        sensors=build_sensors(context.daily, daily_job, health_job, subaccount_job),
        resources=resources,
    )


defs = build_definitions(load_config())
