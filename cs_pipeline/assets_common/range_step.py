"""How a step materialises a range of partitions in one run: each partition's work in order, its
own metadata per partition, one data version per asset, and its asset checks evaluated inside
the step.

Why: a day used to be six Dagster runs and 24 steps, about 2-4 s of Dagster's own work whatever
the data, and a process per step under the UI (issue 14). A range run (the tags
`dagster/asset_partition_range_start` / `_end`, which the CLI, the sensors and the backfill
daemon under a single-run BackfillPolicy use) does any number of days in one step. The work
of each day stays a function of that day (`Day`), called day after day in order, so a range
gives the tables of day-by-day runs (docs/operations.md#range-runs-and-why-they-give-the-tables-of-day-by-day-runs).

What Dagster 1.13 gives a range run, and how it is used here: `context.add_asset_metadata(...,
partition_key=K, asset_key=A)` records each partition's own metadata (rows written, counts) on
its materialisation, as a one-partition run did; a data version returned applies to every
partition of the run (here, a digest of the partitions' own versions, the partition's own
version in a one-partition run); an AssetCheckResult yields one evaluation for the whole run, so each
partition's is yielded as an AssetCheckEvaluation naming its partition (the UI shows it per
partition); a blocking check that fails on a partition fails the step at once, naming the
partition, so nothing after it is written.
"""

import hashlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import dagster as dg

from cs_pipeline import stopping
from cs_pipeline.assets_common.code_versions import code_version
from cs_pipeline.config import PipelineConfig
from cs_pipeline.warehouse import DUCKDB_POOL, WarehouseResource

# One run for the whole range a backfill asks for (UI backfills, the backfill daemon).
SINGLE_RUN = dg.BackfillPolicy.single_run()


@dataclass(frozen=True)
class Day:
    """One partition of a range run, as a daily asset's or check's work for that day reads it."""

    date: date
    run_id: str
    config: PipelineConfig
    warehouse: WarehouseResource
    resources: Any  # the step's resources (crm, ...)
    log: logging.Logger
    profile: str | None = None  # account_health's partitions: the profile of (date, profile)

    @property
    def partition_key(self) -> str:
        """The partition's key: the day, or `date|profile` for account_health."""
        return self.date.isoformat() if self.profile is None else f"{self.date.isoformat()}|{self.profile}"


@dataclass(frozen=True)
class DailyAsset:
    """One daily asset's work (or a few assets written together): its specs and, for one day,
    its MaterializeResults (one per spec, with asset_key when there are several)."""

    specs: tuple[dg.AssetSpec, ...]
    materialize: Callable[[Day], dg.MaterializeResult | Sequence[dg.MaterializeResult]]

    @property
    def keys(self) -> set[dg.AssetKey]:
        """The asset keys it writes."""
        return {spec.key for spec in self.specs}


@dataclass(frozen=True)
class DailyCheck:
    """An asset check evaluated inside its asset's step, after the asset's work, on each
    partition; `per_date`: once per date, after every partition of that date in the run, the
    dates' results making one evaluation of the run (a check of the day, not of a partition)."""

    spec: dg.AssetCheckSpec
    evaluate: Callable[[Day], dg.AssetCheckResult]
    per_date: bool = False


def daily_asset(
    *,
    group: str,
    description: str,
    kinds: Iterable[str] = (),
    name: str | None = None,
    deps: Sequence[object] = (),
) -> Callable[[Callable[[Day], dg.MaterializeResult]], DailyAsset]:
    """Declare a daily asset that writes the warehouse: its work for one day, of kind duckdb
    (and `kinds`), its code version that of the module defining it (code_versions.py)."""

    def declare(compute: Callable[[Day], dg.MaterializeResult]) -> DailyAsset:
        spec = dg.AssetSpec(
            name or compute.__name__,
            deps=deps,
            group_name=group,
            kinds={"duckdb", *kinds},
            code_version=code_version(compute.__module__),
            description=description,
        )
        return DailyAsset((spec,), compute)

    return declare


def daily_check(
    *, asset: str, description: str, blocking: bool = False, per_date: bool = False
) -> Callable[[Callable[[Day], dg.AssetCheckResult]], DailyCheck]:
    """Declare a check of `asset`, evaluated in its asset's step on each partition it wrote
    (`per_date`: on each date, its Day without profile)."""
    if blocking and per_date:
        raise ValueError("a per-date check is evaluated once the date's partitions are written: it cannot block them")

    def declare(evaluate: Callable[[Day], dg.AssetCheckResult]) -> DailyCheck:
        spec = dg.AssetCheckSpec(evaluate.__name__, asset=asset, blocking=blocking, description=description)
        return DailyCheck(spec, evaluate, per_date)

    return declare


def in_dependency_order(work: Sequence[DailyAsset]) -> list[DailyAsset]:
    """`work` ordered so that each comes after the work writing its deps (stable otherwise)."""
    ordered: list[DailyAsset] = []
    pending = list(work)
    while pending:
        written = set().union(*(unit.keys for unit in pending))
        ready = next(
            unit
            for unit in pending
            if not {dep.asset_key for spec in unit.specs for dep in spec.deps} & (written - unit.keys)
        )
        ordered.append(ready)
        pending.remove(ready)
    return ordered


@dataclass
class RangeResults:
    """What a range run's partitions wrote and what their checks found, turned into Dagster's
    events: each partition's metadata at once, one result per asset at the end, one check
    evaluation per check and partition, and one per per-date check for the run."""

    context: dg.AssetExecutionContext
    progress: stopping.StepProgress
    versions: dict[dg.AssetKey, list[str]] = field(default_factory=lambda: defaultdict(list))
    evaluations: list[dg.AssetCheckEvaluation] = field(default_factory=list)
    by_date: dict[dg.AssetCheckKey, list[tuple[date, dg.AssetCheckResult]]] = field(
        default_factory=lambda: defaultdict(list)
    )

    def materialized(self, key: dg.AssetKey, partition_key: str, result: dg.MaterializeResult, seconds: float) -> None:
        """Record one partition's result of asset `key`: its metadata, and the seconds its work took, as that
        partition's own."""
        metadata = {**(result.metadata or {}), "seconds": dg.MetadataValue.float(seconds)}
        self.context.add_asset_metadata(metadata, partition_key=partition_key, asset_key=key)
        self.versions[key].append(result.data_version.value if result.data_version else "")

    def checked(self, check: dg.AssetCheckSpec, partition_key: str, result: dg.AssetCheckResult) -> None:
        """Record a check's result on a partition; a blocking check that failed fails the step (BlockingCheckFailed)."""
        evaluation = _evaluation(check, partition_key, result)
        if check.blocking and not result.passed:
            raise BlockingCheckFailed(evaluation)
        self.evaluations.append(evaluation)

    def checked_date(self, check: dg.AssetCheckSpec, on: date, result: dg.AssetCheckResult) -> None:
        """Record a per-date check's result on one date of the run."""
        self.by_date[check.key].append((on, result))

    def results(self) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation]:
        """One MaterializeResult per asset (after every partition's work), then every check evaluation."""
        for key, versions in self.versions.items():
            yield dg.MaterializeResult(asset_key=key, data_version=_range_version(versions))
        yield from self.evaluations
        for key, found in self.by_date.items():
            yield _dates_evaluation(key, found)


def _evaluation(check: dg.AssetCheckSpec, partition_key: str, result: dg.AssetCheckResult) -> dg.AssetCheckEvaluation:
    return dg.AssetCheckEvaluation(
        asset_key=check.asset_key,
        check_name=check.name,
        passed=result.passed,
        metadata=result.metadata,
        severity=result.severity,
        blocking=check.blocking,
        partition=partition_key,
    )


def _dates_evaluation(key: dg.AssetCheckKey, found: list[tuple[date, dg.AssetCheckResult]]) -> dg.AssetCheckEvaluation:
    """One evaluation of a per-date check for the run: passed when every date passed; its integer
    metadata summed over the dates, the first failing date's other metadata, the failing dates."""
    failing = [(on, result) for on, result in found if not result.passed]
    metadata: dict[str, Any] = {"dates_checked": len(found)}
    for _on, result in found:
        for name, value in (result.metadata or {}).items():
            raw = value.value if isinstance(value, dg.MetadataValue) else value
            if isinstance(raw, int) and not isinstance(raw, bool):
                metadata[name] = metadata.get(name, 0) + raw
    if failing:
        metadata |= {name: value for name, value in (failing[0][1].metadata or {}).items() if name not in metadata}
        metadata["failing_dates"] = ", ".join(on.isoformat() for on, _ in failing)
    return dg.AssetCheckEvaluation(
        asset_key=key.asset_key,
        check_name=key.name,
        passed=not failing,
        metadata=metadata,
        severity=failing[0][1].severity if failing else dg.AssetCheckSeverity.WARN,
        blocking=False,  # a per-date check never blocks (daily_check)
    )


class BlockingCheckFailed(Exception):
    """A blocking check failed on a partition: the step stops there."""

    def __init__(self, evaluation: dg.AssetCheckEvaluation):
        asset = evaluation.asset_key.to_user_string()
        super().__init__(f"blocking check {evaluation.check_name} of {asset} failed for {evaluation.partition}")
        self.evaluation = evaluation

    def failure(self) -> dg.Failure:
        """The step's failure: its message names check and partition; checking again fails the same way."""
        return dg.Failure(str(self), metadata=dict(self.evaluation.metadata or {}), allow_retries=False)


def _range_version(versions: list[str]) -> dg.DataVersion:
    """The data version of a range: a partition's own version for one, else a digest of them all in order."""
    if len(versions) == 1:
        return dg.DataVersion(versions[0])
    return dg.DataVersion(f"{len(versions)}p:{hashlib.sha256('|'.join(versions).encode()).hexdigest()[:16]}")


@contextmanager
def range_run(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[RangeResults]:
    """The frame of a range run's step: the warehouse held open for the whole step (one
    checkpoint at its end, not one per day and asset), its results collected, and SIGTERM or
    SIGINT stopping it within seconds at the partition it is at (stopping.stoppable_step)."""
    with stopping.stoppable_step() as progress, warehouse.held():
        yield RangeResults(context, progress)


def build_range_step(
    name: str,
    work: Sequence[DailyAsset],
    checks: Sequence[DailyCheck],
    partitions: dg.PartitionsDefinition,
    *,
    resource_keys: Iterable[str] = (),
    retry_policy: dg.RetryPolicy | None = None,
    description: str,
) -> dg.AssetsDefinition:
    """One step that materialises `work` for each partition of its run, date after date (daily
    partitions, or date x profile), each partition's work in dependency order and each check
    right after its asset's work: the tables of one run per partition in order, whatever the
    range. A selection of some of the assets runs their work only (a work writing several
    assets runs whole when one of them is selected)."""
    ordered = in_dependency_order(work)
    # partitioned as their asset, so that Dagster plans (and the UI shows) each partition's evaluation
    checks = [
        check if check.per_date else replace(check, spec=check.spec._replace(partitions_def=partitions))
        for check in checks
    ]

    @dg.multi_asset(
        name=name,
        partitions_def=partitions,
        pool=DUCKDB_POOL,
        specs=[spec for unit in ordered for spec in unit.specs],
        check_specs=[check.spec for check in checks],
        can_subset=True,
        backfill_policy=SINGLE_RUN,
        retry_policy=retry_policy,
        required_resource_keys={"settings", "warehouse", *resource_keys},
        description=description,
    )
    def range_step(context: dg.AssetExecutionContext) -> Iterator[dg.MaterializeResult | dg.AssetCheckEvaluation]:
        selected = context.selected_asset_keys
        chosen = [check for check in checks if check.spec.key in context.selected_asset_check_keys]
        each_partition, each_date = [c for c in chosen if not c.per_date], [c for c in chosen if c.per_date]
        config, warehouse = context.resources.settings.config, context.resources.warehouse
        with range_run(context, warehouse) as results:
            try:
                for on, keys in _by_date(context.partition_keys):
                    days = [
                        Day(on, context.run.run_id, config, warehouse, context.resources, context.log, profile)
                        for profile in keys
                    ]
                    for day in days:
                        for unit in (unit for unit in ordered if unit.keys & selected):
                            results.progress.reached(f"{day.partition_key} ({unit.specs[0].key.to_user_string()})")
                            _materialize_day(unit, day, results, selected)
                            for check in (c for c in each_partition if c.spec.asset_key in unit.keys):
                                results.checked(check.spec, day.partition_key, check.evaluate(day))
                    for check in each_date:
                        results.checked_date(check.spec, on, check.evaluate(replace(days[0], profile=None)))
            except BlockingCheckFailed as failed:
                yield failed.evaluation
                raise failed.failure() from None
        yield from results.results()

    return range_step


def _by_date(partition_keys: Sequence[str]) -> list[tuple[date, list[str | None]]]:
    """The run's partition keys by date, oldest first: [(date, [profile, ...] or [None])]."""
    found: dict[date, list[str | None]] = defaultdict(list)
    for key in partition_keys:
        on, _, profile = key.partition("|")
        found[date.fromisoformat(on)].append(profile or None)
    return sorted(found.items())


def _materialize_day(unit: DailyAsset, day: Day, results: RangeResults, selected: set[dg.AssetKey]) -> None:
    """The unit's work for `day`, each result recorded with the seconds the work took (`seconds`:
    the UI plots it per partition; a work writing several assets gives each the same figure)."""
    started = time.perf_counter()
    produced = unit.materialize(day)
    seconds = round(time.perf_counter() - started, 3)
    for result in [produced] if isinstance(produced, dg.MaterializeResult) else produced:
        key = dg.AssetKey.from_coercible(result.asset_key) if result.asset_key is not None else unit.specs[0].key
        if key in selected:
            results.materialized(key, day.partition_key, result, seconds)
