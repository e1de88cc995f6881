"""Simulation of a draft config on history (docs/health-lab.md#simulation): every day of a range
rescored with the draft's profiles (and its custom metrics), compared with production's health.

Inputs come from the published query layer (`analytics.duckdb` attached read-only: the Parquet
of account_metrics, account_rollups, account_health, usage_events), never from the warehouse
file, so a simulation never blocks or is blocked by a run. The one exception is a draft whose
custom `sql` metric is new or changed: its query may read `metric_accounts`, built from the
internal tables account_versions and snapshot_dates, which are copied out of the warehouse by
one short read-only connection (the project's lock wait).

The draft is scored by the production evaluator (`health_sql.health_query`) over every day at
once; its custom metrics that differ from production's are computed day by day by the
production code (`account_metrics.custom_metric_values`) from daily aggregates rebuilt from
the published events by the production SQL (`usage/refresh_aggregates.sql`); a draft that
changes only profiles reuses the stored metrics. Results go to a database of their own,
`simulation_database(config)`, written under a temporary name and renamed into place: a
reader of the previous simulation keeps it, a simulation killed half-way leaves it as it was.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import duckdb

from cs_pipeline import publish
from cs_pipeline.config import CustomMetric, PipelineConfig, Rule
from cs_pipeline.health.account_health import health_input_query
from cs_pipeline.health.health_sql import health_query, text_literal
from cs_pipeline.lab.backtest import (
    ALL_PROFILES,
    BACKTEST_TABLES,
    BacktestInputs,
    BacktestResult,
    ProfileSummary,
    run_backtest,
)
from cs_pipeline.lab.health_lab import reports_folder
from cs_pipeline.lab.report import read_side, render_report, write_report
from cs_pipeline.lib.sql import quote_identifier
from cs_pipeline.metrics.account_metrics import custom_metric_values, user_last_days
from cs_pipeline.tables import TABLES
from cs_pipeline.vocabulary import HEALTH_LABELS, LONGEST_WINDOW, sql_macros
from cs_pipeline.warehouse import (
    MEMORY_LIMIT,
    SchemaVersionError,
    WarehouseLocked,
    connect,
    query_frame,
    read_sql,
    set_variables,
    snapshot_macros,
)

LAB_FOLDER = "lab"  # beside the published layer's folder
DATABASE_NAME = "simulation.duckdb"
PUBLISHED = "published"  # the alias the published layer is attached as
# simulation_health has account_health's columns, so that anything reading one reads the other
HEALTH_TABLE = replace(TABLES["account_health"], name="simulation_health")
SIDES = ("production", "draft")


class SimulationError(ValueError):
    """A simulation that cannot be made as asked; says what to do."""


def simulation_database(config: PipelineConfig) -> Path:
    """The simulation database of `config`: lab/simulation.duckdb beside the published layer's folder."""
    assert config.published is not None  # the config defaults it beside the warehouse
    return config.published.parent / LAB_FOLDER / DATABASE_NAME


@dataclass(frozen=True)
class DraftPlan:
    """What a simulation does with a draft, beside its profiles."""

    recomputed: dict[str, CustomMetric]  # the draft's custom metrics production lacks or defines otherwise
    ignored: list[str]  # settings of the draft a simulation cannot apply, each with why


@dataclass(frozen=True)
class SimulationResult:
    """What a simulation wrote into its database."""

    database: Path
    start: date
    end: date
    horizon: int
    plan: DraftPlan
    label_totals: dict[str, tuple[int, int]]  # label -> (production, draft) account-days over the range
    changed_labels: int  # account-days whose label differs
    changed_accounts: int  # accounts with at least one such day
    backtests: dict[str, BacktestResult]  # "production", "draft"
    seconds: float
    report: Path | None = None  # the HTML page (lab/report.py)


# --- the draft against production ------------------------------------------------------------

# Sections whose effect is already in the stored history (ingestion, statuses, roll-ups): a
# simulation rescoring that history cannot apply a draft's other values.
_STORED_SECTIONS = {
    "crm": "the stored accounts come from production's CRM source and mapping",
    "statuses": "the stored status groups come from production's status catalog",
    "limits": "the stored events were admitted under production's module/action limits",
    "rollups": "sub-account health is not simulated (only account_health is)",
    "retention": "purges are not simulated; events purged in production are gone",
    "start_date": "the simulated days are those production has",
}
# Where a simulation reads (landing, warehouse, published, crm.files_dir) and how long it waits
# (timeouts) are production's, whatever the draft says: not a change a simulation could show,
# and the draft's relative paths resolve from its own folder.
_PATH_KEYS = {"crm": {"files_dir"}}


def plan_draft(production: PipelineConfig, draft: PipelineConfig) -> DraftPlan:
    """How `draft` will be simulated against `production`: which custom metrics are computed
    (new or changed ones; same-named identical ones are read as stored), and which settings are
    ignored and why. Raises SimulationError when a draft rule names an attribute production does
    not map (the stored accounts never have it, so the rule could never be evaluated)."""
    _check_attributes(production, draft)
    recomputed = {
        name: metric
        for name, metric in draft.metrics.items()
        if name not in production.metrics or _definition(metric) != _definition(production.metrics[name])
    }
    ignored = []
    for key, why in _STORED_SECTIONS.items():
        exclude = _PATH_KEYS.get(key, set())
        ours, theirs = getattr(production, key), getattr(draft, key)
        if hasattr(ours, "model_dump"):
            ours, theirs = ours.model_dump(exclude=exclude), theirs.model_dump(exclude=exclude)
        if ours != theirs:
            ignored.append(f"{key}: differs from production's and is ignored: {why}")
    return DraftPlan(recomputed, ignored)


def _definition(metric: CustomMetric) -> tuple[object, ...]:
    """What a custom metric computes: a sql metric by its query text, wherever the file is."""
    if metric.kind == "sql":
        return ("sql", metric.sql_path.read_text())
    return (metric.kind, metric.argument, metric.window)


def _rules_with_places(draft: PipelineConfig) -> list[tuple[str, Rule]]:
    found = []
    for p, profile in enumerate(draft.profiles):
        for side in ("when", "good", "poor"):
            found += [(f"profiles[{p}].{side}[{r}]", rule) for r, rule in enumerate(getattr(profile, side))]
        for d, dimension in enumerate(profile.dimensions):
            for m, metric in enumerate(dimension.metrics):
                where = f"profiles[{p}].dimensions[{d}].metrics[{m}]"
                found += [(where, metric.poor_rule), (where, metric.good_rule)]
    return found


def _check_attributes(production: PipelineConfig, draft: PipelineConfig) -> None:
    stored = production.crm.mapping.account.attributes
    drafted = draft.crm.mapping.account.attributes
    for where, rule in _rules_with_places(draft):
        if rule.metric in drafted and rule.metric not in stored:
            raise SimulationError(
                f"config {draft.source_path}: {where}.metric: {rule.metric!r} is an attribute production does not "
                f"map (crm.mapping.account.attributes of {production.source_path}: {', '.join(stored) or 'none'}); "
                "the stored accounts have no value for it, so a simulation cannot evaluate the rule"
            )


# --- the simulation ---------------------------------------------------------------------------


def simulate(
    production: PipelineConfig,
    draft: PipelineConfig,
    *,
    start: date | None = None,
    end: date | None = None,
    horizon: int = 90,
    run_id: str,
    say: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Rescore start..end (default: every day of production's health) with `draft` and write
    the comparison with production's health into simulation_database(production), its report
    into the health lab's reports folder; `say` is told what the simulation waits for."""
    started = time.monotonic()
    if horizon < 1:
        raise SimulationError(f"the horizon must be at least 1 day, got {horizon}")
    plan = plan_draft(production, draft)
    target = simulation_database(production)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(target)
    building = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(6)}.tmp"
    try:
        with duckdb.connect(str(building), config={"memory_limit": MEMORY_LIMIT}) as con:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET enable_progress_bar = false")
            con.execute(sql_macros())
            _attach_published(con, production)
            start, end = _range(con, start, end)
            set_variables(con, first_day=start, last_day=end, run_id=run_id)
            _draft_metrics(con, production, plan, say)
            _draft_health(con, draft)
            _production_health(con)
            con.execute(read_sql("lab/simulation_compare.sql"))
            backtests = _backtests(con, production, draft, start, end, horizon, run_id)
            _record(con, production, draft, plan, start, end, horizon, run_id)
            result = _result(con, target, start, end, horizon, plan, backtests, started)
            report = _report(con, production, draft, result, run_id)
            result = replace(result, report=report, seconds=time.monotonic() - started)
            con.execute(f"DETACH {PUBLISHED}")
            con.execute("CHECKPOINT")
        publish.fsync(building)
        os.replace(building, target)
        publish.fsync(target.parent)
    finally:
        for leftover in target.parent.glob(f"{building.name}*"):
            leftover.unlink(missing_ok=True)
    return result


def _remove_leftovers(target: Path) -> None:
    """Remove the databases that simulations killed mid-way left being built (named with their
    pid), not those of a simulation still running."""
    for leftover in target.parent.glob(f".{target.name}.*.tmp*"):
        pid = leftover.name.removeprefix(f".{target.name}.").split(".")[0]
        if pid.isdigit() and _process_exists(int(pid)):
            continue
        leftover.unlink(missing_ok=True)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _attach_published(con: duckdb.DuckDBPyConnection, production: PipelineConfig) -> None:
    analytics = production.published / publish.DATABASE_NAME
    if not analytics.exists():
        raise SimulationError(
            f"no published layer at {production.published} (config {production.source_path}): "
            "a simulation reads production's history there; run the pipeline first"
        )
    con.execute(f"ATTACH {text_literal(str(analytics))} AS {PUBLISHED} (READ_ONLY)")


def _range(con: duckdb.DuckDBPyConnection, start: date | None, end: date | None) -> tuple[date, date]:
    """The days to simulate: as asked, by default those of production's health; each must have its
    account_metrics in the published layer."""
    [(first, last)] = con.execute(f"SELECT min(date), max(date) FROM {PUBLISHED}.account_health").fetchall()
    if first is None:
        raise SimulationError("the published layer holds no account_health: run the pipeline first")
    start, end = start or first, end or last
    if end < start:
        raise SimulationError(f"--end {end} is before --start {start}")
    missing = con.execute(
        f"SELECT CAST(day AS DATE) FROM range(?::DATE, ?::DATE + 1, INTERVAL 1 DAY) AS days(day) "
        f"WHERE CAST(day AS DATE) NOT IN (SELECT DISTINCT date FROM {PUBLISHED}.account_metrics "
        "WHERE date BETWEEN ? AND ?) ORDER BY 1",
        [start, end, start, end],
    ).fetchall()
    if missing:
        shown = ", ".join(str(day) for (day,) in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise SimulationError(
            f"no account_metrics in the published layer for {len(missing)} day(s) of {start}..{end}: {shown}; "
            f"materialise them first, or simulate the days production has ({first}..{last})"
        )
    return start, end


def _draft_metrics(
    con: duckdb.DuckDBPyConnection,
    production: PipelineConfig,
    plan: DraftPlan,
    say: Callable[[str], None] | None,
) -> None:
    """The views draft_metrics, account_metrics as the draft sees it from start - 1 (the draft's
    previous_health of the first day) to end: the published rows, the recomputed custom
    metrics in place of stored ones; and simulation_input, what the draft's health reads (with
    the roll-up metrics), as production's account_health reads it (health_input_query). Views
    over the Parquet, not copies: each query reads only the columns it needs."""
    stored = {
        name for (name,) in con.execute(f"SELECT column_name FROM (DESCRIBE {PUBLISHED}.account_metrics)").fetchall()
    }
    replaced = [quote_identifier(name) for name in plan.recomputed if name in stored]
    exclude = f" EXCLUDE ({', '.join(replaced)})" if replaced else ""
    con.execute(
        f"CREATE TEMP VIEW stored_metrics AS SELECT *{exclude} FROM {PUBLISHED}.account_metrics "
        "WHERE date BETWEEN getvariable('first_day') - 1 AND getvariable('last_day')"
    )
    _recompute_metrics(con, production, plan.recomputed, say)
    if plan.recomputed:
        con.execute(
            "CREATE TEMP VIEW draft_metrics AS SELECT m.*, c.* EXCLUDE (date, account_id, run_id) "
            "FROM stored_metrics m LEFT JOIN simulation_custom_metrics c USING (date, account_id)"
        )
    else:  # the fast path: profiles only, the stored metrics as they are
        con.execute("CREATE TEMP VIEW draft_metrics AS SELECT * FROM stored_metrics")
    con.execute(
        "CREATE TEMP VIEW simulation_input AS " + health_input_query("draft_metrics", f"{PUBLISHED}.account_rollups")
    )


def _recompute_metrics(
    con: duckdb.DuckDBPyConnection,
    production: PipelineConfig,
    metrics: dict[str, CustomMetric],
    say: Callable[[str], None] | None,
) -> None:
    """simulation_custom_metrics (date, account_id, one column per metric, run_id; kept in the
    simulation database): the draft's new or changed custom metrics, day by day, by the
    production code, for the accounts that have a metrics row that day (none: no rows)."""
    columns = "".join(f", {quote_identifier(name)} DOUBLE" for name in metrics)
    con.execute(f"CREATE TABLE simulation_custom_metrics (date DATE, account_id VARCHAR{columns}, run_id VARCHAR)")
    if not metrics:
        return
    with_sql = any(metric.kind == "sql" for metric in metrics.values())
    # The daily aggregates the metrics read, rebuilt from the published events by the production
    # SQL. count_action / distinct_users_of_module look 30 days back at most; a sql metric's query
    # may look further, so it gets every event known by the last day.
    since = "TRUE" if with_sql else f"event_date >= getvariable('first_day') - 1 - {LONGEST_WINDOW - 1}"
    con.execute(
        "CREATE TEMP VIEW usage_events AS "
        f"SELECT * FROM {PUBLISHED}.usage_events WHERE partition_date <= getvariable('last_day') AND {since}"
    )
    # user_day_changes: the ingest SQL queues the (account, user) pairs it changes there for `users`;
    # usage_value_ids: it numbers the modules and actions of the bit sets there
    for table in ("usage_account_days", "usage_user_days", "user_day_changes", "usage_value_ids"):
        con.execute(TABLES[table].create_statement().replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
    con.execute("CREATE TEMP TABLE touched_partitions AS SELECT DISTINCT partition_date FROM usage_events")
    con.execute(read_sql("usage/refresh_aggregates.sql"))
    if with_sql:
        _copy_account_versions(con, production, say)
    days = [day for (day,) in con.execute("SELECT DISTINCT date FROM stored_metrics ORDER BY 1").fetchall()]
    for day in days:
        set_variables(con, as_of=day)
        if with_sql:
            con.execute(read_sql("metrics/metric_setup.sql"))  # metric_accounts, metric_events
        user_last_days(con, metrics, day)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE metric_rows AS SELECT account_id FROM stored_metrics WHERE date = ?",
            [day],
        )
        values = custom_metric_values(con, metrics, day)
        con.execute(
            "INSERT INTO simulation_custom_metrics BY NAME SELECT ?::DATE AS date, r.account_id, "
            f"getvariable('run_id') AS run_id{values.select} FROM metric_rows r{values.joins}",
            [day],
        )


def _copy_account_versions(
    con: duckdb.DuckDBPyConnection, production: PipelineConfig, say: Callable[[str], None] | None
) -> None:
    """The account dimension's versions and snapshot dates (internal, not published), which
    metric_setup.sql turns into a sql metric's metric_accounts: read-only queries on the
    warehouse, waiting for another process's lock as a step does."""
    try:
        warehouse = connect(
            production.warehouse,
            read_only=True,
            lock_timeout=production.timeouts.warehouse_lock_seconds,
            say=say,
        )
    except (WarehouseLocked, SchemaVersionError) as exc:
        raise SimulationError(f"a draft sql metric needs the CRM snapshots of the warehouse: {exc}") from None
    try:
        copies = {
            "account_versions": query_frame(warehouse, "SELECT * FROM account_versions"),
            "snapshot_dates": query_frame(warehouse, "SELECT * FROM snapshot_dates WHERE asset = 'accounts'"),
        }
    finally:
        warehouse.close()
    for table, frame in copies.items():
        con.register(f"warehouse_{table}", frame)
        con.execute(f"CREATE TEMP TABLE {table} AS SELECT * FROM warehouse_{table}")
        con.unregister(f"warehouse_{table}")
    con.execute(snapshot_macros())


def _draft_health(con: duckdb.DuckDBPyConnection, draft: PipelineConfig) -> None:
    """simulation_health: the draft's health of start..end, every profile's query over every day
    at once (one statement), previous_health the draft's own health of the day before."""
    attributes, keys = list(draft.crm.mapping.account.attributes), ("date", "account_id")
    scored = " UNION ALL ".join(
        f"SELECT date, account_id, {text_literal(profile.name)} AS profile, health, health_score, dimension_scores, "
        f"reasons FROM ({health_query(profile, draft.profiles, attributes, 'simulation_input', keys=keys)})"
        for profile in draft.profiles
    )
    con.execute(f"CREATE TEMP TABLE draft_scored AS {scored}")
    con.execute(HEALTH_TABLE.create_statement())
    # not ordered: sorting millions of rows with their reasons costs more than scoring them
    con.execute(
        "INSERT INTO simulation_health "
        "SELECT d.*, previous.health AS previous_health, getvariable('run_id') AS run_id "
        "FROM draft_scored d LEFT JOIN draft_scored previous "
        "ON previous.account_id = d.account_id AND previous.date = d.date - 1 "
        "WHERE d.date BETWEEN getvariable('first_day') AND getvariable('last_day')"
    )


def _production_health(con: duckdb.DuckDBPyConnection) -> None:
    """production_health: production's health of start..end, one row per account and day (should
    a day hold two, after a change of profiles, the profile first by name, as previous_health)."""
    con.execute(
        "CREATE TEMP TABLE production_health AS "
        f"SELECT date, account_id, profile, health, reasons FROM {PUBLISHED}.account_health "
        "WHERE date BETWEEN getvariable('first_day') AND getvariable('last_day') "
        "QUALIFY row_number() OVER (PARTITION BY date, account_id ORDER BY profile) = 1"
    )


def _backtests(
    con: duckdb.DuckDBPyConnection,
    production: PipelineConfig,
    draft: PipelineConfig,
    start: date,
    end: date,
    horizon: int,
    run_id: str,
) -> dict[str, BacktestResult]:
    """The backtest (cs_pipeline/lab/backtest.py) of production's health with production's config
    into the schema production, and of the draft's with the draft into the schema draft; then
    the views that set them side by side."""
    published = {name: f"{PUBLISHED}.{name}" for name in ("status_history", "status_changes", "account_rollups")}
    common = {
        "status_history": published["status_history"],
        "status_changes": published["status_changes"],
        "rollups": published["account_rollups"],
    }
    sides = {
        "production": (
            production,
            BacktestInputs(health=f"{PUBLISHED}.account_health", metrics=f"{PUBLISHED}.account_metrics", **common),
        ),
        "draft": (draft, BacktestInputs(health=HEALTH_TABLE.name, metrics="draft_metrics", **common)),
    }
    results = {}
    for side, (config, inputs) in sides.items():
        con.execute(f"CREATE SCHEMA {side}")
        results[side] = run_backtest(
            con,
            config,
            inputs=inputs,
            start=start,
            end=end,
            horizon=horizon,
            config_sha256=config.config_hash(),
            run_id=run_id,
            output=side,
        )
    for table in BACKTEST_TABLES:
        con.execute(_side_by_side(table))
    return results


# the columns that say which backtest a row belongs to, beside the table's own key
_BACKTEST_IDENTITY = ("start", "end", "horizon", "config_sha256", "run_id")


def _side_by_side(table: str) -> str:
    """A view simulation_<table without health_> of the two backtests' rows of `table`, joined on
    its key: the key, then production_<figure> and draft_<figure> for each figure column. A row
    only one side has (a profile or rule only one config has) has nulls on the other. A plain
    view: any reader of the database can query it."""
    keys = [key for key in TABLES[table].key if key not in _BACKTEST_IDENTITY]
    figures = [name for name in TABLES[table].names() if name not in (*keys, *_BACKTEST_IDENTITY)]
    columns = [
        f"{side}.{quote_identifier(name)} AS {quote_identifier(f'{side}_{name}')}" for side in SIDES for name in figures
    ]
    joined = ", ".join(map(quote_identifier, keys))
    view = table.replace("health_", "simulation_", 1)
    return (
        f"CREATE VIEW {quote_identifier(view)} AS SELECT {joined}, {', '.join(columns)} "
        f"FROM production.{table} production FULL JOIN draft.{table} draft USING ({joined}) ORDER BY {joined}"
    )


def _report(
    con: duckdb.DuckDBPyConnection,
    production: PipelineConfig,
    draft: PipelineConfig,
    result: SimulationResult,
    run_id: str,
) -> Path:
    """The simulation's report (lab/report.py), both sides on every chart, in the health lab's
    reports folder: reports/simulation_<draft file>_<start>_<end>_h<horizon>.html."""
    health = {"production": f"{PUBLISHED}.account_health", "draft": HEALTH_TABLE.name}
    sides = [
        read_side(
            con,
            side,
            start=result.start,
            end=result.end,
            horizon=result.horizon,
            inputs=BacktestInputs(health=health[side]),
            output=side,
        )
        for side in SIDES
    ]
    notes = [
        f"Draft {draft.source_path} (sha256 {draft.config_hash()[:12]}) against production {production.source_path} "
        f"(sha256 {production.config_hash()[:12]}), run {run_id}: {result.changed_labels} account-day(s) change "
        f"label, on {result.changed_accounts} account(s); the simulation database is {result.database}."
    ]
    if result.plan.recomputed:
        notes.append(f"Custom metrics computed for the draft: {', '.join(result.plan.recomputed)}.")
    notes += [f"Ignored: {ignored}." for ignored in result.plan.ignored]
    page = render_report(
        sides,
        title=f"Simulation of {draft.source_path.name}, {result.start} to {result.end}, horizon {result.horizon} days",
        notes=notes,
    )
    name = f"simulation_{draft.source_path.stem}_{result.start}_{result.end}_h{result.horizon}.html"
    return write_report(reports_folder(production) / name, page)


def _record(
    con: duckdb.DuckDBPyConnection,
    production: PipelineConfig,
    draft: PipelineConfig,
    plan: DraftPlan,
    start: date,
    end: date,
    horizon: int,
    run_id: str,
) -> None:
    """The table `simulation`: one row saying what was simulated."""
    con.execute(
        """
        CREATE TABLE simulation AS SELECT
            ? AS run_id, current_timestamp AS simulated_at,
            ? AS production_config, ? AS production_sha256, ? AS draft_config, ? AS draft_sha256,
            ?::DATE AS start, ?::DATE AS "end", ?::INTEGER AS horizon,
            ?::VARCHAR[] AS recomputed_metrics, ?::VARCHAR[] AS ignored_settings
        """,
        [
            run_id,
            str(production.source_path),
            production.config_hash(),
            str(draft.source_path),
            draft.config_hash(),
            start,
            end,
            horizon,
            list(plan.recomputed),
            plan.ignored,
        ],
    )


def _result(
    con: duckdb.DuckDBPyConnection,
    target: Path,
    start: date,
    end: date,
    horizon: int,
    plan: DraftPlan,
    backtests: dict[str, BacktestResult],
    started: float,
) -> SimulationResult:
    totals = {
        label: (production, draft)
        for label, production, draft in con.execute(
            "SELECT health, sum(production_accounts)::BIGINT, sum(draft_accounts)::BIGINT "
            "FROM simulation_label_counts GROUP BY health"
        ).fetchall()
    }
    [(changed, accounts)] = con.execute(
        "SELECT count(*), count(DISTINCT account_id) FROM simulation_changes"
    ).fetchall()
    return SimulationResult(
        database=target,
        start=start,
        end=end,
        horizon=horizon,
        plan=plan,
        label_totals={label: totals.get(label, (0, 0)) for label in HEALTH_LABELS},
        changed_labels=changed,
        changed_accounts=accounts,
        backtests=backtests,
        seconds=time.monotonic() - started,
    )


# --- what a person reads --------------------------------------------------------------------


def summary_lines(result: SimulationResult) -> list[str]:
    """The simulation in a few lines, for the terminal and the run's metadata."""
    days = (result.end - result.start).days + 1
    lines = [
        f"simulated {result.start}..{result.end} ({days} day(s)) in {result.seconds:.1f}s: "
        f"{result.changed_labels} label(s) changed, on {result.changed_accounts} account(s)",
        f"  {'label':<10} {'production':>12} {'draft':>12}",
        *(
            f"  {label:<10} {production:>12,} {draft:>12,}"
            for label, (production, draft) in result.label_totals.items()
        ),
    ]
    if result.plan.recomputed:
        lines.append(f"  custom metrics computed for the draft: {', '.join(result.plan.recomputed)}")
    lines += [f"  ignored: {ignored}" for ignored in result.plan.ignored]
    lines.append(f"  backtest, horizon {result.horizon} days (all profiles): production -> draft")
    production, draft = (_all_profiles(result.backtests[side]) for side in SIDES)
    for name, figure in (
        ("lift of Poor", lambda s: _number(s.lift_poor)),
        ("lift of Good", lambda s: _number(s.lift_good)),
        ("recall", lambda s: f"{s.flagged}/{s.churns} churns flagged"),
        ("median lead", lambda s: f"{s.lead_days_quartiles[1]:g} days" if s.lead_days_quartiles else "-"),
    ):
        lines.append(f"    {name:<13} {figure(production)} -> {figure(draft)}")
    lines.append(f"results: {result.database}")
    lines.append(f"report: {result.report}")
    return lines


def _all_profiles(backtest: BacktestResult) -> ProfileSummary:
    return next(s for s in backtest.profiles if s.profile == ALL_PROFILES)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
