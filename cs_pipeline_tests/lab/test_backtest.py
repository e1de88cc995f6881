"""The backtest (docs/health-lab.md#backtest) on a tiny tenant written straight into a DuckDB
warehouse, every figure computed by hand.

Horizon H = 10, range [01-10, 01-22] (of 2025), status history every day 01-01 .. 01-30, so a
day is observable up to 01-20 (01-21 and 01-22 are not: an unobservable end of the range).

    A card   Good but Poor on 01-08 (before the range) and 01-12; churns 01-15: its lead window
             [01-05, 01-14] is cut by the range to [01-10, 01-14]: lead 3, not 7
    B card   Average, Poor on 01-11 and 01-20, the first and last days of the lead window of its
             churn on 01-21: lead 10 (from the first); 01-11 + H = 01-21 is positive, 01-10 is not;
             its health row of 01-21 (status Canceled) is not scored
    C card   churns 01-13 and, reactivated 01-16, again 01-19; Poor (csm_risk 3 - HIGH) on 01-11
    D card   Good, no csm_risk (the csm_risk rule is left out), never churns
    E dims   Good, then Average from 01-18 when its license_utilization is Poor; churns 01-28
    F dims   No value every day: never scored
    G quiet  Good, never churns: a profile with days and no positive day
    H card   churned 01-05, before the range: no scored day in its lead window
    spare    a configured profile without any health row
"""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

import duckdb
import pytest
import yaml

from cs_pipeline import cli
from cs_pipeline.config import PipelineConfig, parse_config
from cs_pipeline.health.rules import POOR_SCORE, metric_score, rule_holds
from cs_pipeline.lab.backtest import BacktestInputs, rule_text, run_backtest
from cs_pipeline.tables import TABLES
from cs_pipeline.warehouse import connect

H = 10
START, END = date(2025, 1, 10), date(2025, 1, 22)
STATUS_UNTIL = date(2025, 1, 30)

CONFIG = """
crm: {source: files, files_dir: crm/, mapping: {account: {attributes: {csm_risk: CSM_Risk__c}}}}
landing: landing/
warehouse: warehouse.duckdb
profiles:
  - name: card
    good: [{metric: engagement_score, op: ">=", value: 60.0}]
    poor:
      - {metric: engagement_score, op: "<", value: 10}
      - {metric: csm_risk, op: in, value: ["3 - HIGH", "4 - CRITICAL"]}
  - name: dims
    dimensions:
      - {name: usage, metrics: [{metric: engagement_score, good: {op: ">=", value: 60}, poor: {op: "<", value: 10}}]}
      - name: adoption
        metrics: [{metric: license_utilization, good: {op: ">=", value: 50}, poor: {op: "<", value: 20}}]
  - name: quiet
    good: [{metric: usage_frequency, op: ">=", value: Weekly}]
    poor: [{metric: usage_frequency, op: is_empty}]
  - name: spare
    good: [{metric: active_users_7d, op: ">=", value: 1}]
    poor: [{metric: events_30d, op: "<", value: 40.0}]
"""


def day(n: int) -> date:
    return date(2025, 1, n)


def days(first: int, last: int) -> list[date]:
    return [day(n) for n in range(first, last + 1)]


# account -> profile, {day: (health, engagement_score, csm_risk, license_utilization)}
def _health_days() -> dict[str, tuple[str, dict[date, tuple[str, int | None, str | None, float | None]]]]:
    a = {d: ("Good", 70, "0 - NO RISK", None) for d in days(5, 14)}
    a[day(8)] = a[day(12)] = ("Poor", 5, "0 - NO RISK", None)
    b = {d: ("Average", 30, "1 - LOW", None) for d in days(10, 21)}
    b[day(11)] = b[day(20)] = b[day(21)] = ("Poor", 5, "1 - LOW", None)
    c = {d: ("Good", 70, "0 - NO RISK", None) for d in [*days(10, 12), *days(16, 18)]}
    c[day(11)] = ("Poor", 70, "3 - HIGH", None)
    e = {d: ("Good" if d < day(18) else "Average", 70, None, 60.0 if d < day(18) else 10.0) for d in days(10, 22)}
    return {
        "A": ("card", a),
        "B": ("card", b),
        "C": ("card", c),
        "D": ("card", {d: ("Good", 80, None, None) for d in days(10, 22)}),
        "E": ("dims", e),
        "F": ("dims", {d: ("No value", None, None, None) for d in days(10, 22)}),
        "G": ("quiet", {d: ("Good", 0, None, None) for d in days(10, 22)}),
        "H": ("card", {d: ("Poor", 0, None, None) for d in days(1, 4)}),
    }


# account -> [(first day, status)]: its status from that day on
STATUSES = {
    "A": [(day(1), "Pro"), (day(15), "Cancelled")],
    "B": [(day(1), "Pro"), (day(21), "Cancelled")],
    "C": [(day(1), "Pro"), (day(13), "Cancelled"), (day(16), "Pro"), (day(19), "Cancelled")],
    "D": [(day(1), "Pro")],
    "E": [(day(1), "Pro"), (day(28), "Cancelled")],
    "F": [(day(1), "Pro")],
    "G": [(day(1), "Trial")],
    "H": [(day(1), "Pro"), (day(5), "Cancelled")],
}
GROUPS = {"Pro": "Paying", "Trial": "Free", "Cancelled": "Canceled"}


def _status_on(account: str, on: date) -> str:
    return [status for first, status in STATUSES[account] if first <= on][-1]


def _write_tenant(con: duckdb.DuckDBPyConnection) -> None:
    health, metrics = [], []
    for account, (profile, by_day) in _health_days().items():
        for on, (label, engagement, csm_risk, utilization) in by_day.items():
            health.append((on, account, profile, label))
            attributes = {"csm_risk": csm_risk} if csm_risk else {}
            frequency = "Weekly" if profile == "quiet" else "Inactive"
            metrics.append(
                (on, account, GROUPS[_status_on(account, on)], engagement, utilization, frequency, attributes)
            )
    con.executemany("INSERT INTO account_health VALUES (?, ?, ?, ?, NULL, MAP {}, [], NULL, 'test')", health)
    con.executemany(
        "INSERT INTO account_metrics BY NAME SELECT ?::DATE AS date, ? AS account_id, 'account' AS account_type, "
        "? AS status_group, ? AS engagement_score, ? AS license_utilization, ? AS usage_frequency, "
        "?::MAP(VARCHAR, VARCHAR) AS attributes, 0 AS active_users_1d, 0 AS active_users_7d, 0 AS active_users_14d, "
        "0 AS active_users_30d, 0 AS events_14d, 0 AS events_30d, 0 AS active_days_14d, 0 AS active_days_30d, "
        "0 AS modules_used_30d, 0 AS actions_used_30d, 'test' AS run_id",
        metrics,
    )
    history = [
        (on, account, _status_on(account, on), GROUPS[_status_on(account, on)])
        for account in STATUSES
        for on in (day(1) + timedelta(n) for n in range((STATUS_UNTIL - day(1)).days + 1))
    ]
    con.executemany("INSERT INTO status_history VALUES (?, ?, 'account', ?, ?, 'test')", history)
    changes = []
    for account, timeline in STATUSES.items():
        for (_, before), (on, after) in zip(timeline, timeline[1:], strict=False):
            kind = "churn" if after == "Cancelled" else "reactivation"
            changes.append((on, account, kind, before, GROUPS[before], after, GROUPS[after]))
    con.executemany("INSERT INTO status_changes VALUES (?, ?, 'account', ?, NULL, ?, ?, ?, ?, 'test')", changes)


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> PipelineConfig:
    return parse_config(yaml.safe_load(CONFIG), tmp_path_factory.mktemp("config") / "cs_pipeline.yaml")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory, config) -> Path:
    """The tiny tenant, backtested once (run_id 'bt1')."""
    path = tmp_path_factory.mktemp("lab") / "warehouse.duckdb"
    with connect(path) as con:
        _write_tenant(con)
        result = run_backtest(
            con, config, start=START, end=END, horizon=H, config_sha256="sha", run_id="bt1", queue_publishing=True
        )
    assert (result.start, result.end, result.horizon, result.status_until) == (START, END, H, STATUS_UNTIL)
    return path


def _rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _figures(path: Path, table: str, key: str) -> dict:
    """key -> (days, positive_days, churn_rate, lift) of the backtest of (START, END, H)."""
    rows = _rows(
        path,
        f"SELECT {key}, {'days' if table == 'health_backtest' else 'against_days'}, positive_days, churn_rate, lift "
        f"FROM {table} WHERE start = '{START}' AND \"end\" = '{END}' AND horizon = {H}",
    )
    return {row[0] if len(row) == 5 else row[:2]: tuple(row[-4:]) for row in rows}


def approx(value: Fraction | None):
    return None if value is None else pytest.approx(float(value), rel=1e-12)


def expected(days: int, positive: int, base: Fraction | None) -> tuple:
    rate = Fraction(positive, days) if days else None
    lift = None if rate is None or not base else rate / base
    return (days, positive, approx(rate), approx(lift))


def test_churn_rate_and_lift_per_profile_and_label(warehouse):
    got = {
        (profile, health): figures
        for (profile, health), figures in (
            ((row[0], row[1]), row[2:])
            for row in _rows(
                warehouse,
                "SELECT profile, health, days, positive_days, churn_rate, lift FROM health_backtest",
            )
        )
    }
    card, dims, everyone = Fraction(21, 33), Fraction(3, 11), Fraction(24, 55)
    assert got == {
        # card: A 4 Good + 1 Poor, B 9 Average (8 positive: not 01-10) + 2 Poor, C 5 Good + 1 Poor, all
        # positive; D 11 Good (01-21, 01-22 unobservable), none positive
        ("card", "Good"): expected(20, 9, card),
        ("card", "Average"): expected(9, 8, card),
        ("card", "Poor"): expected(4, 4, card),
        # dims: E 8 Good days before 01-18, 3 Average days 01-18 .. 01-20, positive (churn 01-28); F never
        ("dims", "Good"): expected(8, 0, dims),  # a rate of 0 over a positive base: lift 0
        ("dims", "Average"): expected(3, 3, dims),
        ("dims", "Poor"): expected(0, 0, dims),
        # quiet: 11 days, no positive day: a base rate of 0 gives no lift, not a division error
        ("quiet", "Good"): expected(11, 0, Fraction(0)),
        ("quiet", "Average"): expected(0, 0, Fraction(0)),
        ("quiet", "Poor"): expected(0, 0, Fraction(0)),
        ("spare", "Good"): expected(0, 0, None),
        ("spare", "Average"): expected(0, 0, None),
        ("spare", "Poor"): expected(0, 0, None),
        ("*", "Good"): expected(39, 9, everyone),
        ("*", "Average"): expected(12, 11, everyone),
        ("*", "Poor"): expected(4, 4, everyone),
    }
    assert got[("dims", "Good")][3] == 0.0


def test_each_churn_with_a_scored_day_in_its_lead_window_with_its_lead_time(warehouse):
    assert _rows(
        warehouse, "SELECT account_id, churn_date, flagged, lead_days FROM health_backtest_churns ORDER BY ALL"
    ) == [
        ("A", day(15), True, 3),  # first Poor in the window cut by the range: 01-12 (01-08 is before it)
        ("B", day(21), True, 10),  # Poor on 01-11 and 01-20: from the first
        ("C", day(13), True, 2),  # churns twice: each churn its own row
        ("C", day(19), True, 8),
        ("E", day(28), False, None),
        # H's churn of 01-05 has no scored day in [12-26, 01-04]: not considered
    ]


def test_lift_per_rule_and_per_dimensional_metric(warehouse):
    card, dims = Fraction(21, 33), Fraction(3, 11)
    assert _figures(warehouse, "health_backtest_rules", "profile, rule") == {
        # engagement < 60: A on 01-12, B on its 11 days (10 positive)
        ("card", "good: engagement_score >= 60.0"): expected(12, 11, card),
        ("card", "poor: engagement_score < 10"): expected(3, 3, card),  # A 01-12, B 01-11 and 01-20
        # C on 01-11; D has no csm_risk: the rule is left out, against no one
        ("card", 'poor: csm_risk in ["3 - HIGH", "4 - CRITICAL"]'): expected(1, 1, card),
        ("dims", "usage/engagement_score"): expected(0, 0, dims),
        ("dims", "adoption/license_utilization"): expected(3, 3, dims),  # E 01-18 .. 01-20
        ("quiet", 'good: usage_frequency >= "Weekly"'): expected(0, 0, Fraction(0)),
        ("quiet", "poor: usage_frequency is_empty"): expected(0, 0, Fraction(0)),
        ("spare", "good: active_users_7d >= 1"): expected(0, 0, None),
        ("spare", "poor: events_30d < 40.0"): expected(0, 0, None),
    }


def test_every_row_says_which_backtest_wrote_it_and_is_queued_for_publishing(warehouse):
    for table in ("health_backtest", "health_backtest_churns", "health_backtest_rules"):
        assert _rows(warehouse, f'SELECT DISTINCT start, "end", horizon, config_sha256, run_id FROM {table}') == [
            (START, END, H, "sha", "bt1")
        ]
    assert sorted(_rows(warehouse, "SELECT table_name, partition FROM publish_queue")) == [
        ("health_backtest", ""),
        ("health_backtest_churns", ""),
        ("health_backtest_rules", ""),
    ]


def test_a_backtest_replaces_the_rows_of_its_own_range_and_horizon_only(warehouse, config, tmp_path):
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes(warehouse.read_bytes())
    before = _rows(copy, "SELECT * EXCLUDE (run_id) FROM health_backtest ORDER BY ALL")
    with connect(copy) as con:
        run_backtest(con, config, start=START, end=END, horizon=H, config_sha256="sha", run_id="bt2")
        result = run_backtest(con, config, horizon=5, config_sha256="sha", run_id="bt3")
    assert (result.start, result.end) == (day(1), day(22))  # by default: every day of the health relation
    assert _rows(copy, "SELECT * EXCLUDE (run_id) FROM health_backtest WHERE horizon = 10 ORDER BY ALL") == before
    assert _rows(copy, "SELECT horizon, run_id, count(*) FROM health_backtest GROUP BY ALL ORDER BY ALL") == [
        (5, "bt3", 15),
        (10, "bt2", 15),
    ]


def test_the_inputs_and_the_output_are_relations_the_caller_names(warehouse, config, tmp_path):
    """As a simulation runs it: its own health relation, its output in a database of its own."""
    with duckdb.connect() as con:
        con.execute(f"ATTACH '{warehouse}' AS w (READ_ONLY)")
        con.execute(f"ATTACH '{tmp_path / 'sim.duckdb'}' AS sim")
        con.execute("CREATE TEMP TABLE draft_health AS SELECT * FROM w.account_health")
        con.execute("UPDATE draft_health SET health = 'Poor' WHERE account_id = 'D'")
        inputs = BacktestInputs(
            health="draft_health",
            metrics="w.account_metrics",
            rollups="w.account_rollups",
            status_history="w.status_history",
            status_changes="w.status_changes",
        )
        run_backtest(
            con, config, inputs=inputs, start=START, end=END, horizon=H, config_sha256="d", run_id="s", output="sim"
        )
        assert con.execute(
            "SELECT days, positive_days FROM sim.health_backtest WHERE profile = 'card' AND health = 'Poor'"
        ).fetchall() == [(15, 4)]  # D's 11 observable days are Poor now
        assert [
            c for (c,) in con.execute("SELECT column_name FROM (DESCRIBE sim.health_backtest_rules)").fetchall()
        ] == [c.name for c in TABLES["health_backtest_rules"].ordered()]


def test_the_rule_text_shows_the_values_as_written_in_the_config(config):
    card, quiet, spare = config.profiles[0], config.profiles[2], config.profiles[3]
    assert [rule_text("good", r) for r in card.good] == ["good: engagement_score >= 60.0"]
    assert rule_text("poor", card.poor[1]) == 'poor: csm_risk in ["3 - HIGH", "4 - CRITICAL"]'
    assert rule_text("poor", quiet.poor[0]) == "poor: usage_frequency is_empty"
    assert rule_text("poor", spare.poor[0]) == "poor: events_30d < 40.0"
    assert card.good[0].value == 60  # the loaded value is normalised; the text is not


def test_a_rule_is_against_an_account_exactly_where_the_reference_evaluator_says(warehouse, config):
    """Each rule's against_days and positive_days, recounted with rules.py (the pure evaluator of
    docs/health.md) on the metrics of every scored observable day."""
    churns = {(a, on) for a, timeline in STATUSES.items() for on, status in timeline if status == "Cancelled"}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        days_scored = con.execute(
            "SELECT h.profile, m.* FROM account_health h JOIN account_metrics m USING (date, account_id) "
            "JOIN status_history s USING (date, account_id) WHERE h.date BETWEEN ? AND ? AND h.date + ? <= ? "
            "AND h.health IN ('Good', 'Average', 'Poor') AND s.status_group IN ('Free', 'Paying')",
            [START, END, H, STATUS_UNTIL],
        )
        names = [column[0] for column in days_scored.description]
        scored = [dict(zip(names, row, strict=True)) for row in days_scored.fetchall()]
    expected_counts = {}
    for profile in config.profiles:
        rules = [
            (f"{d.name}/{m.metric}", lambda v, m=m: (metric_score(m, v) or (None,))[0] == POOR_SCORE)
            for d in profile.dimensions
            for m in d.metrics
        ]
        rules += [(rule_text("good", r), lambda v, r=r: rule_holds(r, v) is False) for r in profile.good]
        rules += [(rule_text("poor", r), lambda v, r=r: rule_holds(r, v) is True) for r in profile.poor]
        for text, against in rules:
            days_against = [
                row for row in scored if row["profile"] == profile.name and against({**row, **row["attributes"]})
            ]
            positive = [
                row for row in days_against
                if any(a == row["account_id"] and row["date"] < on <= row["date"] + timedelta(H) for a, on in churns)
            ]  # fmt: skip
            expected_counts[(profile.name, text)] = (len(days_against), len(positive))
    got = _figures(warehouse, "health_backtest_rules", "profile, rule")
    assert {key: figures[:2] for key, figures in got.items()} == expected_counts
    assert sum(days for days, _ in expected_counts.values()) == 19  # 12 + 3 + 1 + 3: the test has teeth


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--start", "2025-01-02", "--end", "2025-01-01"],
            "cs-pipeline: --end 2025-01-01 is before --start 2025-01-02",
        ),
        (["--horizon", "0"], "cs-pipeline: --horizon 0: the horizon is a number of days, at least 1"),
    ],
)
def test_the_backtest_command_refuses_a_range_or_horizon_that_means_nothing(arguments, message, capsys):
    assert cli.main(["backtest", *arguments]) == 1
    assert capsys.readouterr().err.strip() == message
