"""The CRM source the config names (docs/data-model.md#crm-objects-and-field-mapping)."""

from __future__ import annotations

from typing import Any

from cs_pipeline.config import PipelineConfig
from cs_pipeline.crm.salesforce_extraction import SalesforceMirror, salesforce_resource
from cs_pipeline.crm.sources import CrmFilesSource, CrmSource


def crm_source(config: PipelineConfig) -> CrmSource:
    """The CSV exports, or the Salesforce mirror tables the salesforce_* assets keep."""
    if config.crm.source == "files":
        return CrmFilesSource(files_dir=str(config.crm.files_dir))
    return SalesforceMirror(warehouse_path=str(config.warehouse))


def build(config: PipelineConfig) -> dict[str, Any]:
    """The CRM domain's resources: `crm` and, for `crm.source: salesforce`, the `salesforce` client."""
    resources: dict[str, Any] = {"crm": crm_source(config)}
    if config.crm.source == "salesforce":
        sf = config.crm.salesforce
        resources["salesforce"] = salesforce_resource(sf.api_version, sf.bulk_threshold, sf.overlap_minutes)
    return resources
