"""The CRM source the config names (SPEC 3.1, 3.2)."""

from __future__ import annotations

from cs_pipeline.config import ConfigError, PipelineConfig
from cs_pipeline.crm.sources import CrmFilesSource, CrmSource


def crm_source(config: PipelineConfig) -> CrmSource:
    if config.crm.source == "files":
        return CrmFilesSource(files_dir=str(config.crm.files_dir))
    raise ConfigError(
        config.source_path, [f"crm.source: {config.crm.source!r} is not available in this version yet (use files)"]
    )
