"""Health of one profile's accounts for one day (docs/health.md), written to `account_health`.

The SQL comes from `health_sql.py` (the set-based form of `rules.py`); this module
runs it over the day's `account_metrics` rows and replaces exactly the (date, profile) slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb

from cs_pipeline import publish
from cs_pipeline.config import PipelineConfig
from cs_pipeline.health.health_sql import health_query
from cs_pipeline.transactions import transaction
from cs_pipeline.vocabulary import HEALTH_LABELS, ROLLUP_METRICS
from cs_pipeline.warehouse import require_rows, set_variables

# account_health's metadata key for each health label (Good -> good, No value -> no_value)
HEALTH_COUNT_KEYS = {label: label.lower().replace(" ", "_") for label in HEALTH_LABELS}


@dataclass(frozen=True)
class HealthResult:
    """What compute_account_health wrote for one (day, profile)."""
    as_of: date
    profile: str
    rows: int
    health: dict[str, int]  # Good/Average/Poor/No value -> rows
    turned_poor: int  # Poor today, Good/Average/No value yesterday
    mean_health_score: float | None  # dimension profiles only


def health_input_query(metrics: str = "account_metrics", rollups: str = "account_rollups") -> str:
    """SELECT, per date and account, every input a rule reads: the `metrics` row (account_metrics'
    columns, aliased m) and the roll-up metrics of `rollups` (docs/metrics.md#roll-up-metrics;
    no value for an account without descendants). `metrics` and `rollups` are relation names as SQL."""
    columns = ", ".join(f"r.{metric.name}" for metric in ROLLUP_METRICS)
    return (
        f"SELECT m.*, {columns} FROM {metrics} m "
        f"LEFT JOIN {rollups} r ON r.date = m.date AND r.account_id = m.account_id"
    )


def compute_account_health(
    con: duckdb.DuckDBPyConnection, config: PipelineConfig, *, as_of: date, profile: str, run_id: str
) -> HealthResult:
    """Replaces the account_health rows of (`as_of`, `profile`) from the day's metrics and roll-ups."""
    require_rows(con, "account_metrics", as_of)
    chosen = next(p for p in config.profiles if p.name == profile)
    set_variables(con, as_of=as_of, profile=profile, run_id=run_id)
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW health_input AS {health_input_query()} WHERE m.date = getvariable('as_of')"
    )
    attributes = list(config.crm.mapping.account.attributes)
    with transaction(con):
        con.execute(
            "CREATE OR REPLACE TEMP TABLE health_slice AS "
            + health_query(chosen, config.profiles, attributes, "health_input")
        )
        con.execute("DELETE FROM account_health WHERE date = getvariable('as_of') AND profile = getvariable('profile')")
        con.execute(
            """
            INSERT INTO account_health
            SELECT getvariable('as_of'), h.account_id, getvariable('profile'), h.health, h.health_score,
                h.dimension_scores, h.reasons,
                previous.health, getvariable('run_id')
            FROM health_slice h
            LEFT JOIN (
                -- one row per account and day; should a config change leave two, take one deterministically
                SELECT account_id, arg_min(health, profile) AS health
                FROM account_health WHERE date = getvariable('as_of') - 1 GROUP BY account_id
            ) previous USING (account_id)
            """
        )
        publish.queue(con, "account_health", [(as_of, profile)])
        _correct_next_day_previous_health(con)
        result = _summarise(con, as_of, profile)
    return result


def _correct_next_day_previous_health(con: duckdb.DuckDBPyConnection) -> None:
    """Sets the previous_health of the day after as_of to the health now stored for as_of,
    where it differs, and queues those partitions: a day written after the next one (out of
    order, a re-run, runs of several profiles in any order) leaves the table that writing the
    days in order gives. Nothing to do when the days run in order."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE next_day_previous AS
        SELECT n.account_id, n.profile, previous.health AS previous_health
        FROM account_health n
        LEFT JOIN (
            SELECT account_id, arg_min(health, profile) AS health
            FROM account_health WHERE date = getvariable('as_of') GROUP BY account_id
        ) previous USING (account_id)
        WHERE n.date = getvariable('as_of') + 1 AND n.previous_health IS DISTINCT FROM previous.health
        """
    )
    con.execute(
        """
        UPDATE account_health SET previous_health = c.previous_health, run_id = getvariable('run_id')
        FROM next_day_previous c
        WHERE account_health.date = getvariable('as_of') + 1
            AND account_health.account_id = c.account_id AND account_health.profile = c.profile
        """
    )
    publish.queue_query(
        con, "account_health", "SELECT DISTINCT getvariable('as_of') + 1, profile FROM next_day_previous"
    )


def _summarise(con: duckdb.DuckDBPyConnection, as_of: date, profile: str) -> HealthResult:
    where = "WHERE date = ? AND profile = ?"
    counts = dict(
        con.execute(f"SELECT health, count(*) FROM account_health {where} GROUP BY ALL", [as_of, profile]).fetchall()
    )
    [(rows, turned_poor, mean_score)] = con.execute(
        "SELECT count(*), count(*) FILTER (health = 'Poor' AND previous_health <> 'Poor'), "
        f"avg(health_score) FROM account_health {where}",
        [as_of, profile],
    ).fetchall()
    return HealthResult(
        as_of=as_of,
        profile=profile,
        rows=rows,
        health={label: counts.get(label, 0) for label in HEALTH_LABELS},
        turned_poor=turned_poor,
        mean_health_score=mean_score,
    )
