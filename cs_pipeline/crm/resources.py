"""The CRM source the config names (docs/data-model.md#crm-objects-and-field-mapping)."""

from __future__ import annotations

from cs_pipeline.config import PipelineConfig
from cs_pipeline.crm.salesforce_extraction import SalesforceMirror
from cs_pipeline.crm.sources import CrmFilesSource, CrmSource


def crm_source(config: PipelineConfig) -> CrmSource:
    """The CSV exports, or the Salesforce mirror tables the salesforce_* assets keep."""
    if config.crm.source == "files":
        return CrmFilesSource(files_dir=str(config.crm.files_dir))
    return SalesforceMirror(warehouse_path=str(config.warehouse))
