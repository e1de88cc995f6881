"""The health lab's backtest (docs/health-lab.md#backtest): did the health of days [start, end]
foretell the churns of the `horizon` days after each?

Interface (stable: the simulation runs it on its own health relation):

    run_backtest(
        con,                      # a DuckDB connection that sees the inputs and the output schema
        config,                   # PipelineConfig: its profiles (and attribute names) are backtested
        *,
        inputs=BacktestInputs(),  # the relations read, as SQL names (schema-qualified if need be)
        start=None, end=None,     # D1, D2 (dates; None: the first / last date of inputs.health)
        horizon=90,               # H, days
        config_sha256,            # recorded on every row: the config whose health is tested
        run_id,                   # recorded on every row
        output="main",            # the schema (SQL, e.g. main or sim.main) the three tables go to
        queue_publishing=False,   # True in the warehouse: queue the tables for the published layer
    ) -> BacktestResult

It writes `health_backtest`, `health_backtest_churns` and `health_backtest_rules` (columns as
the registry, cs_pipeline/tables.py, declares them; created in `output` when missing), replacing
the rows of its own (start, end, horizon), in one transaction. The health relation has
account_health's columns (date, account_id, profile, health, ...); the metrics and roll-ups
relations account_metrics' and account_rollups' (the rules read them, through
`health.account_health.health_input_query`); status_history and status_changes theirs.

Every figure is set-based SQL (lab/sql/); a rule is "against" an account exactly where the
health evaluator (health/health_sql.py's `rule_expression`) makes a poor rule hold, a good rule
fail, or a dimensional metric Poor: both read the same SQL for a rule.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import duckdb

from cs_pipeline import publish
from cs_pipeline.config import EMPTINESS_OPS, PipelineConfig, Profile, Rule
from cs_pipeline.health.account_health import health_input_query
from cs_pipeline.health.health_sql import rule_expression, text_literal
from cs_pipeline.lib.sql import quote_identifier
from cs_pipeline.tables import TABLES
from cs_pipeline.transactions import transaction
from cs_pipeline.vocabulary import sql_macros
from cs_pipeline.warehouse import read_sql, set_variables

DEFAULT_HORIZON = 90
BACKTEST_TABLES = ("health_backtest", "health_backtest_churns", "health_backtest_rules")
ALL_PROFILES = "*"
SCORED_LABELS = ("Good", "Average", "Poor")
# columns of backtest_rule_input beside the metrics (named so that no metric can take them)
_PROFILE_COLUMN = "__backtest_profile"
_POSITIVE_COLUMN = "__backtest_positive"


@dataclass(frozen=True)
class BacktestInputs:
    """The relations a backtest reads, as SQL names: the warehouse's tables by default, a
    simulation's own relations otherwise."""

    health: str = "account_health"
    metrics: str = "account_metrics"
    rollups: str = "account_rollups"
    status_history: str = "status_history"
    status_changes: str = "status_changes"


@dataclass(frozen=True)
class ProfileSummary:
    """A profile's key figures ('*': all profiles), for the terminal and the asset's metadata."""

    profile: str
    days: int  # scored observable days
    positive_days: int
    lift_poor: float | None
    lift_good: float | None
    churns: int  # considered churns whose last scored day in the lead window was this profile's
    flagged: int
    recall: float | None
    lead_days_quartiles: tuple[float, float, float] | None  # of the flagged churns
    top_rules: tuple[tuple[str, float], ...]  # (rule, lift): the three highest lifts
    bottom_rules: tuple[tuple[str, float], ...]  # the three lowest


@dataclass(frozen=True)
class BacktestResult:
    """What run_backtest wrote: its range, horizon, rows per table and the summary per profile."""

    start: date
    end: date
    horizon: int
    status_until: date | None  # the newest status_history date: days after it - horizon are unobservable
    rows: dict[str, int]
    profiles: tuple[ProfileSummary, ...]  # '*' first, then the profiles in config order


def rule_text(side: str, rule: Rule) -> str:
    """`<good|poor>: <metric> <op> <value as JSON as written in the config>` (docs/health-lab.md#rule-text)."""
    if rule.op in EMPTINESS_OPS:
        return f"{side}: {rule.metric} {rule.op}"
    return f"{side}: {rule.metric} {rule.op} {json.dumps(rule.written_value, ensure_ascii=False)}"


def _against_expressions(profile: Profile, attribute_names: Sequence[str]) -> list[tuple[str, str]]:
    """(rule text, SQL that is TRUE where the rule is against the account) for every rule of a
    scorecard, or metric of a dimensional profile, in config order."""
    if profile.dimensions:
        return [
            (f"{dimension.name}/{metric.metric}", f"({rule_expression(metric.poor_rule, attribute_names)}) IS TRUE")
            for dimension in profile.dimensions
            for metric in dimension.metrics
        ]
    good = [(rule_text("good", r), f"({rule_expression(r, attribute_names)}) IS FALSE") for r in profile.good]
    poor = [(rule_text("poor", r), f"({rule_expression(r, attribute_names)}) IS TRUE") for r in profile.poor]
    return good + poor


def _rule_counts(config: PipelineConfig) -> str:
    """SQL: profile, rule, against_days, positive_days for every rule of every profile (0 days
    included: an aggregate without rows still gives one row, which unnest spreads per rule)."""
    attribute_names = list(config.crm.mapping.account.attributes)
    positive = quote_identifier(_POSITIVE_COLUMN)
    selects = []
    for profile in config.profiles:
        against = _against_expressions(profile, attribute_names)
        texts = ", ".join(text_literal(text) for text, _ in against)
        days = ", ".join(f"count(*) FILTER ({sql})" for _, sql in against)
        positives = ", ".join(f"count(*) FILTER (({sql}) AND {positive})" for _, sql in against)
        selects.append(
            f"SELECT {text_literal(profile.name)} AS profile, unnest([{texts}]) AS rule, "
            f"unnest([{days}]) AS against_days, unnest([{positives}]) AS positive_days\n"
            f"FROM backtest_rule_input WHERE {quote_identifier(_PROFILE_COLUMN)} = {text_literal(profile.name)}"
        )
    return "\nUNION ALL\n".join(selects)


def _ensure_tables(con: duckdb.DuckDBPyConnection, output: str) -> None:
    """The three tables in `output`, as the registry declares them, when it lacks them."""
    for name in BACKTEST_TABLES:
        columns = ",\n    ".join(column.ddl() for column in TABLES[name].ordered())
        con.execute(f"CREATE TABLE IF NOT EXISTS {output}.{quote_identifier(name)} (\n    {columns}\n)")


def history_range(con: duckdb.DuckDBPyConnection, health: str = "account_health") -> tuple[date, date]:
    """The first and last date of the health relation `health`; ValueError when it is empty."""
    [(first, last)] = con.execute(f"SELECT min(date), max(date) FROM {health}").fetchall()
    if first is None:
        raise ValueError(f"{health} has no rows: materialise some days before a backtest")
    return first, last


def run_backtest(
    con: duckdb.DuckDBPyConnection,
    config: PipelineConfig,
    *,
    inputs: BacktestInputs = BacktestInputs(),  # noqa: B008 - frozen, so one shared default is safe
    start: date | None = None,
    end: date | None = None,
    horizon: int = DEFAULT_HORIZON,
    config_sha256: str,
    run_id: str,
    output: str = "main",
    queue_publishing: bool = False,
) -> BacktestResult:
    """Backtest the health of `inputs.health` over [start, end] with `horizon` and write the three
    tables into `output` (see the module docstring)."""
    if start is None or end is None:
        first, last = history_range(con, inputs.health)
        start, end = start or first, end or last
    if start > end:
        raise ValueError(f"backtest: start {start} is after end {end}")
    if horizon < 1:
        raise ValueError(f"backtest: the horizon must be at least 1 day, got {horizon}")
    con.execute(sql_macros())
    set_variables(
        con,
        backtest_start=start,
        backtest_end=end,
        backtest_horizon=horizon,
        backtest_config_sha256=config_sha256,
        backtest_run_id=run_id,
        backtest_profiles=config.profile_names(),
    )
    con.execute(read_sql("lab/setup.sql"))
    names = {
        "health": inputs.health,
        "status_history": inputs.status_history,
        "status_changes": inputs.status_changes,
        "output": output,
    }
    con.execute(read_sql("lab/scored_days.sql").format(**names))
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW backtest_rule_input AS "
        f"SELECT s.profile AS {quote_identifier(_PROFILE_COLUMN)}, s.positive AS {quote_identifier(_POSITIVE_COLUMN)}, "
        f"i.* FROM backtest_scored s JOIN ({health_input_query(inputs.metrics, inputs.rollups)}) i "
        "ON i.date = s.date AND i.account_id = s.account_id WHERE s.observable"
    )
    _ensure_tables(con, output)
    with transaction(con):
        con.execute(read_sql("lab/delete_backtest.sql").format(**names))
        con.execute(read_sql("lab/health_backtest.sql").format(**names))
        con.execute(read_sql("lab/health_backtest_churns.sql").format(**names))
        con.execute(read_sql("lab/health_backtest_rules.sql").format(**names, rule_counts=_rule_counts(config)))
        if queue_publishing:
            for name in BACKTEST_TABLES:
                publish.queue(con, name)
    return _result(con, config, start, end, horizon, inputs, output)


def _this_backtest(output: str, table: str) -> str:
    """`FROM <output>.<table> WHERE <the rows of this backtest's (start, end, horizon)>`."""
    return (
        f"FROM {output}.{quote_identifier(table)} WHERE \"start\" = getvariable('backtest_start') "
        "AND \"end\" = getvariable('backtest_end') AND horizon = backtest_horizon()"
    )


def _result(
    con: duckdb.DuckDBPyConnection,
    config: PipelineConfig,
    start: date,
    end: date,
    horizon: int,
    inputs: BacktestInputs,
    output: str,
) -> BacktestResult:
    rows = {
        name: con.execute(f"SELECT count(*) {_this_backtest(output, name)}").fetchone()[0] for name in BACKTEST_TABLES
    }
    [(status_until,)] = con.execute(f"SELECT max(date) FROM {inputs.status_history}").fetchall()
    tables = dict(zip(("labels", "churns", "rules"), (_this_backtest(output, n) for n in BACKTEST_TABLES), strict=True))
    summaries = {row[0]: row for row in con.execute(read_sql("lab/summary.sql").format(**tables)).fetchall()}
    order = [ALL_PROFILES, *config.profile_names()]
    return BacktestResult(
        start=start,
        end=end,
        horizon=horizon,
        status_until=status_until,
        rows=rows,
        profiles=tuple(_profile_summary(summaries[p]) for p in order if p in summaries),
    )


def _profile_summary(row: tuple) -> ProfileSummary:
    profile, days, positive_days, lift_poor, lift_good, churns, flagged, quartiles, top, bottom = row
    return ProfileSummary(
        profile=profile,
        days=days,
        positive_days=positive_days,
        lift_poor=lift_poor,
        lift_good=lift_good,
        churns=churns,
        flagged=flagged,
        recall=flagged / churns if churns else None,
        lead_days_quartiles=tuple(quartiles) if quartiles is not None else None,
        top_rules=tuple((r["rule"], r["lift"]) for r in top or []),
        bottom_rules=tuple((r["rule"], r["lift"]) for r in bottom or []),
    )
