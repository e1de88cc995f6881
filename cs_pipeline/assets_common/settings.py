"""The settings resource (which config file a run uses) and the audit tags every run
cs_pipeline launches carries (which config, with which content, which code).

Not here: the config's content and validation (cs_pipeline/config.py), the job names and range
tags (jobs.py).
"""

from __future__ import annotations

import dagster as dg

from cs_pipeline.config import PipelineConfig, load_config


class PipelineSettings(dg.ConfigurableResource):
    """The pipeline's YAML config (docs/configuration.md), by path so each run records which file it used."""

    config_path: str

    @property
    def config(self) -> PipelineConfig:
        """The config file's content, read at each use: a long-lived code server sees edits without a restart."""
        return load_config(self.config_path)


def audit_tags(config: PipelineConfig) -> dict[str, str]:
    """Tags of every run cs_pipeline launches (CLI, schedule, sensors): which config file,
    with which content, and which cs_pipeline version produced it."""
    from cs_pipeline import __version__

    return {
        "cs_pipeline/config_path": str(config.source_path),
        "cs_pipeline/config_sha256": config.config_hash(),
        "cs_pipeline/version": __version__,
    }
