"""The code location: assembles the domain packages for the configured tenant."""

from __future__ import annotations

import warnings

import dagster as dg

from cs_pipeline.assets_common.shared import PipelineSettings, audit_tags, daily_partitions, health_partitions
from cs_pipeline.automation.schedules import build_daily_schedule
from cs_pipeline.automation.sensors import build_sensors
from cs_pipeline.config import PipelineConfig, load_config
from cs_pipeline.crm.assets import build_crm_assets
from cs_pipeline.crm.checks import build_crm_checks
from cs_pipeline.crm.resources import crm_source
from cs_pipeline.crm.salesforce_assets import build_salesforce_assets
from cs_pipeline.crm.salesforce_extraction import salesforce_resource
from cs_pipeline.health.assets import build_health_assets
from cs_pipeline.health.checks import build_health_checks
from cs_pipeline.lifecycle.assets import build_lifecycle_assets
from cs_pipeline.metrics.assets import build_metrics_assets
from cs_pipeline.metrics.checks import build_metrics_checks
from cs_pipeline.rollups.assets import build_rollup_assets
from cs_pipeline.usage.assets import build_usage_assets
from cs_pipeline.usage.checks import build_usage_checks
from cs_pipeline.warehouse import WarehouseResource

# Partitioned asset checks are marked preview in Dagster 1.13; the checks rely on them on purpose.
warnings.filterwarnings("ignore", "Specifying a partitions_def on an AssetCheckSpec", dg.PreviewWarning)
# account_health depends on its day before through a MultiPartitionMapping, beta in Dagster 1.13.
warnings.filterwarnings("ignore", "Class `MultiPartitionMapping` is currently in beta", dg.BetaWarning)

# A job runs one partition key, so a day is three jobs: the daily assets (one run), the
# date x profile account_health (one run per profile), then subaccount_health (one run).
DAILY_JOB = "daily_pipeline"
HEALTH_JOB = "health_pipeline"
SUBACCOUNT_JOB = "subaccount_health_pipeline"


def build_definitions(config: PipelineConfig) -> dg.Definitions:
    """The code location for `config`: every asset, check, job, schedule, sensor and resource."""
    daily = daily_partitions(config)
    health = health_partitions(config)
    extraction = build_salesforce_assets() if config.crm.source == "salesforce" else []
    crm = build_crm_assets(daily, [asset.key for asset in extraction])
    [subaccount_health] = build_rollup_assets(daily)
    assets = [
        *extraction,
        *crm,
        *build_usage_assets(daily),
        *build_metrics_assets(daily),
        *build_lifecycle_assets(daily),
    ]
    health_assets = build_health_assets(health)
    checks = [*build_crm_checks(daily), *build_usage_checks(daily), *build_metrics_checks(daily)]
    health_checks = build_health_checks(health)
    resources = {
        "settings": PipelineSettings(config_path=str(config.source_path)),
        "warehouse": WarehouseResource(
            path=str(config.warehouse),
            published=str(config.published),
            lock_timeout_seconds=config.timeouts.warehouse_lock_seconds,
        ),
        "crm": crm_source(config),
    }
    if extraction:
        sf = config.crm.salesforce
        resources["salesforce"] = salesforce_resource(sf.api_version, sf.bulk_threshold, sf.overlap_minutes)
    # however a run of these jobs starts (UI, schedule, sensor, CLI), it records the config's hash
    tags = audit_tags(config)
    daily_job = dg.define_asset_job(DAILY_JOB, selection=dg.AssetSelection.assets(*assets), tags=tags)
    health_job = dg.define_asset_job(HEALTH_JOB, selection=dg.AssetSelection.assets(*health_assets), tags=tags)
    subaccount_job = dg.define_asset_job(
        SUBACCOUNT_JOB, selection=dg.AssetSelection.assets(subaccount_health), tags=tags
    )
    return dg.Definitions(
        assets=[*assets, *health_assets, subaccount_health],
        asset_checks=[*checks, *health_checks],
        jobs=[daily_job, health_job, subaccount_job],
        schedules=[build_daily_schedule(daily_job)],
        sensors=build_sensors(daily, daily_job, health_job, subaccount_job),
        resources=resources,
    )


defs = build_definitions(load_config())
