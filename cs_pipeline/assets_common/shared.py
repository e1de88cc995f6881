"""What every domain's Dagster definitions share: the settings resource, the partitions and how a step reads its
partition, the audit tags of runs, and the result of a schema check. How an asset is declared is in
declare.py, its code version in code_versions.py."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import dagster as dg
import pandera.polars as pa
import polars as pl

from cs_pipeline import schemas
from cs_pipeline.config import PipelineConfig, load_config

# What dg.define_asset_job returns; Dagster does not export its class.
AssetJob = Any

# A day, or a range of days, is three runs, one step each: the daily assets, account_health
# for every profile (date x profile partitions), then subaccount_health.
DAILY_JOB = "daily_pipeline"
HEALTH_JOB = "health_pipeline"
SUBACCOUNT_JOB = "subaccount_health_pipeline"
# the health lab's backtest of the whole history: run on demand (CLI, UI), never by the schedule
LAB_JOB = "health_lab"
# A run over a range of partition keys (both included), as the CLI, the sensors and the
# backfill daemon launch one; a health range D1|<first profile> .. D2|<last profile> is every
# profile of D1..D2 (multi-partition keys order by dimension name: date, then profile).
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


@dataclass(frozen=True)
class DomainContext:
    """What a domain's `build(context)` (in its assets.py, checks.py) builds its definitions from."""

    config: PipelineConfig
    daily: dg.DailyPartitionsDefinition  # daily_partitions(config)
    health: dg.MultiPartitionsDefinition  # health_partitions(config)

    @classmethod
    def of(cls, config: PipelineConfig) -> DomainContext:
        """The context of `config`'s code location."""
        return cls(config, daily_partitions(config), health_partitions(config))


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


def daily_partitions(config: PipelineConfig) -> dg.DailyPartitionsDefinition:
    """UTC days from the config's start_date, the last one being yesterday: a day is processed once it is over."""
    return dg.DailyPartitionsDefinition(start_date=config.start_date.isoformat(), timezone="UTC")


def health_partitions(config: PipelineConfig) -> dg.MultiPartitionsDefinition:
    """Day x health profile, for account_health (dimension names sort date, profile)."""
    return dg.MultiPartitionsDefinition(
        {"date": daily_partitions(config), "profile": dg.StaticPartitionsDefinition(config.profile_names())}
    )


def schema_check_result(schema: pa.DataFrameSchema, rows: pl.DataFrame | Iterable[pl.DataFrame]) -> dg.AssetCheckResult:
    """A blocking check's verdict on stored rows, with the failing checks in metadata. `rows`: a
    frame, or its batches (a partition of millions of rows read batch by batch holds one batch
    in memory at a time), for a schema without uniqueness (which no batch alone can judge)."""
    if isinstance(rows, pl.DataFrame):
        rows = [rows]
    elif schema.unique or any(column.unique for column in schema.columns.values()):
        raise ValueError(f"the schema of {schema.name} has unique columns: check it on one frame, not batches")
    checked, failing = 0, []
    for frame in rows:
        checked += frame.height
        found = schemas.failures(schema, frame)
        if found is not None:
            failing.append(found)
    if not failing:
        return dg.AssetCheckResult(passed=True, metadata={"rows_checked": checked})
    found = pl.concat(failing, how="vertical_relaxed")
    return dg.AssetCheckResult(
        passed=False,
        metadata={
            "rows_checked": checked,
            "failures": found.height,
            "failing_checks": dg.MetadataValue.md(
                "| column | check | rows | example |\n|---|---|---|---|\n"
                + "\n".join(
                    f"| {r['column']} | {r['check']} | {r['rows']} | {r['failure_case']} |"
                    for r in schemas.summarise_failures(found).iter_rows(named=True)
                )
            ),
        },
    )
