"""The jobs' names and the tags of a run over a range of partitions: what the code location,
the CLI, the schedule and the sensors agree on to launch and recognise runs.

Not here: what a job runs (definitions.py: each job's one range step), the partitions
(partitions.py), the tags every run carries (settings.py, audit_tags).
"""

from typing import Any

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
