"""The code location: assembles the domains under defs/ for the configured tenant."""

from __future__ import annotations

import dagster as dg

from cs_pipeline.config import PipelineConfig, load_config
from cs_pipeline.defs.crm.assets import build_crm_assets
from cs_pipeline.defs.crm.checks import build_crm_checks
from cs_pipeline.defs.crm.resources import crm_source
from cs_pipeline.defs.shared import PipelineSettings, daily_partitions
from cs_pipeline.defs.usage.assets import build_usage_assets
from cs_pipeline.defs.usage.checks import build_usage_checks
from cs_pipeline.warehouse import WarehouseResource

DAILY_JOB = "daily_pipeline"


def build_definitions(config: PipelineConfig) -> dg.Definitions:
    daily = daily_partitions(config)
    assets = [*build_crm_assets(daily), *build_usage_assets(daily)]
    checks = [*build_crm_checks(daily), *build_usage_checks(daily)]
    daily_job = dg.define_asset_job(DAILY_JOB, selection=dg.AssetSelection.all())
    return dg.Definitions(
        assets=assets,
        asset_checks=checks,
        jobs=[daily_job],
        resources={
            "settings": PipelineSettings(config_path=str(config.source_path)),
            "warehouse": WarehouseResource(path=str(config.warehouse)),
            "crm": crm_source(config),
        },
    )


defs = build_definitions(load_config())
