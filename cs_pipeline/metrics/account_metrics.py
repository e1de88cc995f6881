"""Usage metrics per account for one day (docs/metrics.md), written to `account_metrics`.

Set-based throughout: the built-in metrics come from the daily aggregates in one SQL file,
`count_action` / `distinct_users_of_module` metrics from the same aggregates (events per
action, modules per user), and each `sql` metric from its own query file over raw events.
Everything runs in one transaction that replaces the day's rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb

from cs_pipeline import publish
from cs_pipeline.config import CustomMetric, PipelineConfig
from cs_pipeline.lib.sql import quote_identifier
from cs_pipeline.metrics import window_users
from cs_pipeline.transactions import transaction
from cs_pipeline.warehouse import read_sql, set_variables


class MetricQueryError(ValueError):
    """A custom `sql` metric file that cannot be used; names the metric and the file."""


@dataclass(frozen=True)
class MetricsResult:
    """What compute_account_metrics wrote for one day."""
    as_of: date
    snapshot_date: date | None  # the CRM snapshot the accounts come from (None: no snapshot yet)
    rows: int
    rows_by_type: dict[str, int]  # account_type -> rows
    usage_frequency: dict[str, int]  # Inactive/Monthly/Weekly/Daily -> rows
    custom_values: dict[str, int]  # custom metric -> rows with a value
    sql_rows_ignored: dict[str, int]  # sql metric -> rows returned for IDs without a metrics row


def compute_account_metrics(
    con: duckdb.DuckDBPyConnection, config: PipelineConfig, *, as_of: date, run_id: str
) -> MetricsResult:
    """Replaces the account_metrics rows of `as_of`: built-in and custom metrics of every account."""
    set_variables(con, as_of=as_of)
    with transaction(con):
        for name in config.metrics:
            con.execute(f'ALTER TABLE account_metrics ADD COLUMN IF NOT EXISTS "{name}" DOUBLE')
        con.execute(read_sql("metrics/metric_setup.sql"))
        user_last_days(con, config.metrics, as_of)
        con.execute(read_sql("metrics/account_metrics.sql"))
        custom = custom_metric_values(con, config.metrics, as_of)
        con.execute("DELETE FROM account_metrics WHERE date = ?", [as_of])
        con.execute(
            f"INSERT INTO account_metrics BY NAME SELECT ? AS date, r.*{custom.select}, ? AS run_id "
            f"FROM metric_rows r{custom.joins}",
            [as_of, run_id],
        )
        publish.queue(con, "account_metrics", [(as_of,)])
        result = _summarise(con, config, as_of, custom.sql_rows_ignored)
    return result


@dataclass(frozen=True)
class CustomMetricValues:
    """Where custom_metric_values put the custom metrics of a day, to select with metric_rows r."""
    select: str  # ', <expression> AS "<metric>"' per metric
    joins: str  # the LEFT JOINs of metric_rows r that the expressions read
    sql_rows_ignored: dict[str, int]  # sql metric -> rows returned for IDs without a metrics row


def custom_metric_values(
    con: duckdb.DuckDBPyConnection, metrics: Mapping[str, CustomMetric], as_of: date
) -> CustomMetricValues:
    """The custom `metrics` of as_of for the accounts of the temp table metric_rows (account_id):
    count_action and distinct_users_of_module metrics into metric_counted, each sql metric into
    metric_sql_<name>. Needs metric_user_last_days (user_last_days) and, for sql metrics, the
    views of metric_setup.sql. The simulation of a draft (cs_pipeline/lab/simulate.py) calls it too."""
    columns = _counted_metrics(con, metrics, as_of)
    ignored = {}
    for name, metric in metrics.items():
        if metric.kind == "sql":
            ignored[name] = _sql_metric(con, name, metric.sql_path, as_of)
            columns.append(f'"{name}".value AS "{name}"')
    joins = " LEFT JOIN metric_counted c USING (account_id)" + "".join(
        f' LEFT JOIN "metric_sql_{name}" AS "{name}" USING (account_id)'
        for name, metric in metrics.items()
        if metric.kind == "sql"
    )
    return CustomMetricValues("".join(f", {column}" for column in columns), joins, ignored)


def _module_user_metrics(metrics: Mapping[str, CustomMetric]) -> dict[str, CustomMetric]:
    return {n: m for n, m in metrics.items() if m.kind == "distinct_users_of_module"}


def user_last_days(con: duckdb.DuckDBPyConnection, metrics: Mapping[str, CustomMetric], as_of: date) -> None:
    """metric_user_last_days (window_users.TABLE, which the roll-ups read too): per account and
    user seen in window 30 of the events known at the end of as_of, its last day there and, per
    distinct_users_of_module metric, its last day with that module. One pass over
    usage_user_days, the largest input of the metrics, serves the active_users windows and
    those custom metrics."""
    module_users = _module_user_metrics(metrics)
    last_days = "".join(
        f', max(event_date) FILTER (list_contains(modules, ?)) AS "{_last_day_column(n)}"' for n in module_users
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {window_users.TABLE} AS "
        f"SELECT account_id, user_id, max(event_date) AS last_day{last_days} FROM usage_user_days "
        "WHERE partition_date <= ?::DATE AND event_date BETWEEN ?::DATE - 29 AND ?::DATE "
        "GROUP BY account_id, user_id",
        [m.argument for m in module_users.values()] + [as_of] * 3,
    )
    window_users.built(con, as_of)


def _last_day_column(metric_name: str) -> str:
    return f"last_day_{metric_name}"


def _counted_metrics(con: duckdb.DuckDBPyConnection, metrics: Mapping[str, CustomMetric], as_of: date) -> list[str]:
    """count_action metrics from usage_account_days (events per action) over the metric's
    window of the events known at the end of as_of, and distinct_users_of_module metrics from
    metric_user_last_days, into metric_counted; returns their select expressions, 0 for an
    account without such events."""
    known = "partition_date <= ?::DATE AND event_date BETWEEN ?::DATE - 29 AND ?::DATE"
    action_counts = {n: m for n, m in metrics.items() if m.kind == "count_action"}
    module_users = _module_user_metrics(metrics)
    sources, parameters = [], []
    if action_counts:
        columns = [f'sum(action_events[?]) FILTER (event_date > ?::DATE - ?) AS "{n}"' for n in action_counts]
        sources.append(
            f"SELECT account_id, {', '.join(columns)} FROM usage_account_days WHERE {known} GROUP BY account_id"
        )
        parameters += [p for m in action_counts.values() for p in (m.argument, as_of, m.window)] + [as_of] * 3
    if module_users:
        # a user counts for a module when its last day with that module is within the window
        counts = [f'count(*) FILTER ("{_last_day_column(n)}" > ?::DATE - ?) AS "{n}"' for n in module_users]
        sources.append(f"SELECT account_id, {', '.join(counts)} FROM metric_user_last_days GROUP BY account_id")
        parameters += [p for m in module_users.values() for p in (as_of, m.window)]
    if not sources:
        con.execute("CREATE OR REPLACE TEMP TABLE metric_counted AS SELECT NULL::VARCHAR AS account_id LIMIT 0")
        return []
    joined = " FULL JOIN ".join(f"({source}) AS s{i}" for i, source in enumerate(sources))
    if len(sources) > 1:
        joined += " USING (account_id)"
    con.execute(f"CREATE OR REPLACE TEMP TABLE metric_counted AS SELECT * FROM {joined}", parameters)
    return [f'coalesce(c."{name}", 0)::DOUBLE AS "{name}"' for name in [*action_counts, *module_users]]


def _sql_metric(con: duckdb.DuckDBPyConnection, name: str, path: Path, as_of: date) -> int:
    """Run a custom `sql` metric into metric_sql_<name> (account_id, value DOUBLE); returns how
    many of its rows name an account that has no metrics row for the day (not stored)."""
    where = f"custom metric {name!r} ({path})"
    statements = con.extract_statements(path.read_text())
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise MetricQueryError(f"{where}: must hold exactly one SELECT query returning (account_id, value)")
    statement = statements[0]
    unknown_parameters = statement.named_parameters - {"as_of"}
    if unknown_parameters:
        raise MetricQueryError(f"{where}: unknown parameter(s) {sorted(unknown_parameters)}; only $as_of is set")
    parameters = {"as_of": as_of} if statement.named_parameters else None
    try:
        con.execute(f'CREATE OR REPLACE TEMP TABLE "metric_sql_raw_{name}" AS {statement.query}', parameters)
        columns = [c for (c, *_rest) in con.execute(f'DESCRIBE "metric_sql_raw_{name}"').fetchall()]
        if len(columns) != 2:
            raise MetricQueryError(f"{where}: returns the columns {columns}; it must return (account_id, value)")
        account, value = (quote_identifier(c) for c in columns)
        con.execute(
            f'CREATE OR REPLACE TEMP TABLE "metric_sql_{name}" AS '
            f'SELECT {account}::VARCHAR AS account_id, {value}::DOUBLE AS value FROM "metric_sql_raw_{name}"'
        )
    except duckdb.Error as exc:
        raise MetricQueryError(f"{where} failed for {as_of}: {exc}") from exc
    duplicates = con.execute(
        f'SELECT account_id, count(*) FROM "metric_sql_{name}" GROUP BY account_id HAVING count(*) > 1 LIMIT 3'
    ).fetchall()
    if duplicates:
        shown = ", ".join(f"{account!r} ({count} rows)" for account, count in duplicates)
        raise MetricQueryError(f"{where}: returns more than one row per account for {as_of}, e.g. {shown}")
    [(ignored,)] = con.execute(
        f'SELECT count(*) FROM "metric_sql_{name}" WHERE account_id IS NULL '
        "OR account_id NOT IN (SELECT account_id FROM metric_rows)"
    ).fetchall()
    return ignored


def _summarise(
    con: duckdb.DuckDBPyConnection, config: PipelineConfig, as_of: date, ignored: dict[str, int]
) -> MetricsResult:
    [(rows, snapshot_date)] = con.execute(
        "SELECT count(*), max(snapshot_date) FROM account_metrics WHERE date = ?", [as_of]
    ).fetchall()
    by_type = dict(con.execute("SELECT account_type, count(*) FROM metric_rows GROUP BY ALL").fetchall())
    frequency = dict(con.execute("SELECT usage_frequency, count(*) FROM metric_rows GROUP BY ALL").fetchall())
    custom = {}
    if config.metrics:
        counts = ", ".join(f"count({quote_identifier(name)})" for name in config.metrics)
        [values] = con.execute(f"SELECT {counts} FROM account_metrics WHERE date = ?", [as_of]).fetchall()
        custom = dict(zip(config.metrics, values))
    return MetricsResult(
        as_of=as_of,
        snapshot_date=snapshot_date,
        rows=rows,
        rows_by_type=by_type,
        usage_frequency=frequency,
        custom_values=custom,
        sql_rows_ignored=ignored,
    )
