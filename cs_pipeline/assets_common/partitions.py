"""The partitions of the code location (UTC days; day x health profile for account_health) and
`DomainContext`, what each domain's `build(context)` declares its assets and checks with.

Not here: how a step reads the partitions of its run (range_step.py, `Day`), the jobs and the
range tags (jobs.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from cs_pipeline.config import PipelineConfig


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


def daily_partitions(config: PipelineConfig) -> dg.DailyPartitionsDefinition:
    """UTC days from the config's start_date, the last one being yesterday: a day is processed once it is over."""
    return dg.DailyPartitionsDefinition(start_date=config.start_date.isoformat(), timezone="UTC")


def health_partitions(config: PipelineConfig) -> dg.MultiPartitionsDefinition:
    """Day x health profile, for account_health (dimension names sort date, profile)."""
    return dg.MultiPartitionsDefinition(
        {"date": daily_partitions(config), "profile": dg.StaticPartitionsDefinition(config.profile_names())}
    )
