"""The simulation of a draft (cs_pipeline/lab/simulate.py, docs/health-lab.md#simulation) on a tiny
tenant whose every label is computed by hand.

The tenant: three Pro accounts A, B, C since 2024; C is cancelled in the CRM export of the 22nd
(a churn, so C has no health that day). Events, one delivery a day on the 20th, 21st and 22nd:
A one "Send invoice" a day, B two "Login" a day, C none. So events_30d is A 1, 2, 3 and B 2, 4, 6
on the 20th, 21st, 22nd, and C 0.

Production (one profile, default): Good when events_30d >= 4, Poor when events_30d < 1:
    20th: A Average, B Average, C Poor; 21st: A Average, B Good, C Poor; 22nd: A Average, B Good.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from cs_pipeline import cli
from cs_pipeline.config import load_config
from cs_pipeline.lab.simulate import SimulationError, plan_draft, simulation_database
from cs_pipeline_tests.support.tenant import CONFIG, write_crm, write_events_csv
from cs_pipeline_tests.support.warehouse import read_only, warehouse_digest

DAYS = ("2025-11-20", "2025-11-21", "2025-11-22")
PRODUCTION_PROFILES = """\
profiles:
  - name: default
    good: [{metric: events_30d, op: ">=", value: 4}]
    poor: [{metric: events_30d, op: "<", value: 1}]
"""
# the threshold of the good rule lowered from 4 to 2
THRESHOLD_DRAFT = PRODUCTION_PROFILES.replace("value: 4", "value: 2")
# a custom metric: "Send invoice" events of window 7, and Good when there are at least 2
CUSTOM_METRIC_DRAFT = """\
metrics:
  invoices: {count_action: Send invoice, window: 7}
profiles:
  - name: default
    good: [{metric: invoices, op: ">=", value: 2}]
    poor: [{metric: events_30d, op: "<", value: 1}]
"""
# the same as a sql metric over the CRM snapshot in force: Pro accounts only (C is Cancelled on the
# 22nd, so it has no value that day)
SQL_METRIC = """\
SELECT a.account_id, count(e.event_id) AS value
FROM metric_accounts a
LEFT JOIN metric_events e
  ON e.account_id = a.account_id AND e.action = 'Send invoice' AND e.event_date BETWEEN $as_of - 6 AND $as_of
WHERE a.status = 'Pro'
GROUP BY a.account_id
"""
SQL_METRIC_DRAFT = CUSTOM_METRIC_DRAFT.replace("{count_action: Send invoice, window: 7}", "{sql: invoices.sql}")
BASE_CONFIG = CONFIG.split("profiles:")[0]


def account(account_id: str, status: str = "Pro") -> dict[str, str]:
    return {"Id": f"001{account_id}", "External_Id__c": account_id, "Name": account_id, "Status__c": status,
            "Customer_Since__c": "2024-01-01"}  # fmt: skip


def event(day: str, account_id: str, number: int, action: str) -> dict[str, str]:
    return {"event_id": f"{account_id}-{day}-{number}", "ts": f"{day}T10:0{number}:00Z", "account_id": account_id,
            "user_id": f"u@{account_id}", "action": action}  # fmt: skip


def write_config(folder: Path, profiles: str, name: str = "cs_pipeline.yaml") -> Path:
    path = folder / name
    path.write_text(BASE_CONFIG + profiles)
    return path


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tenant above, run through the pipeline (cs-pipeline backfill); its config path."""
    root = tmp_path_factory.mktemp("simulate")
    write_crm(root / "crm" / "date=2025-11-20", [account("A"), account("B"), account("C")])
    write_crm(root / "crm" / "date=2025-11-22", [account("A"), account("B"), account("C", "Cancelled")])
    for day in DAYS:
        rows = [event(day, "A", 1, "Send invoice"), event(day, "B", 1, "Login"), event(day, "B", 2, "Login")]
        write_events_csv(root / "landing", day, "a.csv", rows)
    config = write_config(root, PRODUCTION_PROFILES)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        assert cli.main(["--config", str(config), "backfill", "--start", DAYS[0], "--end", DAYS[-1]]) == 0
    return config


def simulate(production: Path, draft: Path, capsys: pytest.CaptureFixture, *extra: str) -> str:
    """`cs-pipeline simulate` of `draft` (horizon 2) on the production tenant; its terminal output."""
    capsys.readouterr()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(production.parent / "dagster_home"))
        status = cli.main(["--config", str(production), "simulate", "--draft", str(draft), "--horizon", "2", *extra])
    output = capsys.readouterr()
    assert status == 0, output.err
    return output.out


def results(production: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(simulation_database(load_config(production))), read_only=True) as con:
        return con.execute(sql).fetchall()


def backtest_rows(production: Path, side: str, table: str) -> list[tuple]:
    return results(production, f"SELECT * EXCLUDE (run_id) FROM {side}.{table} ORDER BY ALL")


@pytest.mark.e2e
def test_a_lower_threshold_turns_the_hand_computed_accounts_good(production, capsys):
    # Draft: Good from events_30d >= 2. 20th: B (2) Average -> Good; 21st and 22nd: A (2, 3) Average -> Good.
    output = simulate(production, write_config(production.parent, THRESHOLD_DRAFT, "threshold.yaml"), capsys)
    assert "3 label(s) changed, on 2 account(s)" in output
    # the report (lab/report.py) of both sides, in the health lab's reports folder
    report = production.parent / "reports" / "simulation_threshold_2025-11-20_2025-11-22_h2.html"
    assert f"report: {report}" in output
    assert (
        "<h3>production: recall 1/1</h3>" in report.read_text() and "<h3>draft: recall 1/1</h3>" in report.read_text()
    )
    changes = results(
        production,
        "SELECT date::VARCHAR, account_id, production_health, production_reasons, draft_health, draft_reasons "
        "FROM simulation_changes ORDER BY ALL",
    )
    assert changes == [
        ("2025-11-20", "B", "Average", ["events_30d < 1 (value 2)", "events_30d >= 4 (value 2)"],
         "Good", ["events_30d >= 2 (value 2)"]),
        ("2025-11-21", "A", "Average", ["events_30d < 1 (value 2)", "events_30d >= 4 (value 2)"],
         "Good", ["events_30d >= 2 (value 2)"]),
        ("2025-11-22", "A", "Average", ["events_30d < 1 (value 3)", "events_30d >= 4 (value 3)"],
         "Good", ["events_30d >= 2 (value 3)"]),
    ]  # fmt: skip
    counts = results(production, "SELECT date::VARCHAR, health, production_accounts, draft_accounts "
                     "FROM simulation_label_counts WHERE date = '2025-11-20'")  # fmt: skip
    assert counts == [
        ("2025-11-20", "Good", 0, 1), ("2025-11-20", "Average", 2, 1),
        ("2025-11-20", "Poor", 1, 1), ("2025-11-20", "No value", 0, 0),
    ]  # fmt: skip
    transitions = results(production, "SELECT date::VARCHAR, production_health, draft_health, accounts "
                          "FROM simulation_transitions ORDER BY ALL")  # fmt: skip
    assert transitions == [
        ("2025-11-20", "Average", "Average", 1), ("2025-11-20", "Average", "Good", 1),
        ("2025-11-20", "Poor", "Poor", 1),
        ("2025-11-21", "Average", "Good", 1), ("2025-11-21", "Good", "Good", 1), ("2025-11-21", "Poor", "Poor", 1),
        ("2025-11-22", "Average", "Good", 1), ("2025-11-22", "Good", "Good", 1),  # C churned: no health
    ]  # fmt: skip
    # previous_health is the draft's own day before (none before the 20th: no metrics on the 19th)
    previous = results(production, "SELECT date::VARCHAR, account_id, previous_health FROM simulation_health "
                       "WHERE account_id IN ('A', 'B') ORDER BY ALL")  # fmt: skip
    assert previous == [
        ("2025-11-20", "A", None), ("2025-11-20", "B", None),
        ("2025-11-21", "A", "Average"), ("2025-11-21", "B", "Good"),
        ("2025-11-22", "A", "Good"), ("2025-11-22", "B", "Good"),
    ]  # fmt: skip
    # Backtest, horizon 2: only the 20th is observable (20 + 2 <= 22, the newest status date);
    # C churns on the 22nd, so C's day is positive: base rate 1/3, Poor 1/1 (lift 3) on both sides;
    # production's Average has A and B, the draft's Average A and its Good B, none positive.
    side_by_side = results(
        production,
        "SELECT health, production_days, production_positive_days, production_lift, draft_days, "
        "draft_positive_days, draft_lift FROM simulation_backtest WHERE profile = '*' ORDER BY health",
    )
    assert side_by_side == [("Average", 2, 0, 0.0, 1, 0, 0.0), ("Good", 0, 0, None, 1, 0, 0.0),
                            ("Poor", 1, 1, 3.0, 1, 1, 3.0)]  # fmt: skip
    # C's churn on the 22nd: Poor on the 20th, the first day of its lead window: flagged, 2 days ahead
    churns = results(production, "SELECT account_id, churn_date::VARCHAR, production_flagged, production_lead_days, "
                     "draft_flagged, draft_lead_days FROM simulation_backtest_churns")  # fmt: skip
    assert churns == [("C", "2025-11-22", True, 2, True, 2)]


@pytest.mark.e2e
def test_a_draft_custom_metric_is_computed_and_used_by_its_rule(production, capsys):
    # invoices (Send invoice, window 7): A 1, 2, 3; B and C 0. Good from 2: A Good on the 21st and
    # 22nd (production: Average), B Average on those days (production: Good).
    output = simulate(production, write_config(production.parent, CUSTOM_METRIC_DRAFT, "invoices.yaml"), capsys)
    assert "custom metrics computed for the draft: invoices" in output
    assert results(production, "SELECT recomputed_metrics FROM simulation") == [(["invoices"],)]
    values = results(production, "SELECT date::VARCHAR, account_id, invoices FROM simulation_custom_metrics "
                     "WHERE date >= '2025-11-20' ORDER BY ALL")  # fmt: skip
    assert values == [
        ("2025-11-20", "A", 1.0), ("2025-11-20", "B", 0.0), ("2025-11-20", "C", 0.0),
        ("2025-11-21", "A", 2.0), ("2025-11-21", "B", 0.0), ("2025-11-21", "C", 0.0),
        ("2025-11-22", "A", 3.0), ("2025-11-22", "B", 0.0), ("2025-11-22", "C", 0.0),
    ]  # fmt: skip
    changes = results(production, "SELECT date::VARCHAR, account_id, production_health, draft_health, draft_reasons "
                      "FROM simulation_changes ORDER BY ALL")  # fmt: skip
    assert changes == [
        ("2025-11-21", "A", "Average", "Good", ["invoices >= 2 (value 2.0)"]),
        ("2025-11-21", "B", "Good", "Average", ["events_30d < 1 (value 4)", "invoices >= 2 (value 0.0)"]),
        ("2025-11-22", "A", "Average", "Good", ["invoices >= 2 (value 3.0)"]),
        ("2025-11-22", "B", "Good", "Average", ["events_30d < 1 (value 6)", "invoices >= 2 (value 0.0)"]),
    ]  # fmt: skip


@pytest.mark.e2e
def test_a_draft_sql_metric_reads_the_crm_snapshot_in_force_of_each_day(production, capsys):
    (production.parent / "invoices.sql").write_text(SQL_METRIC)
    simulate(production, write_config(production.parent, SQL_METRIC_DRAFT, "invoices_sql.yaml"), capsys)
    values = results(production, "SELECT date::VARCHAR, account_id, invoices FROM simulation_custom_metrics "
                     "WHERE date >= '2025-11-20' ORDER BY ALL")  # fmt: skip
    assert values == [
        ("2025-11-20", "A", 1.0), ("2025-11-20", "B", 0.0), ("2025-11-20", "C", 0.0),
        ("2025-11-21", "A", 2.0), ("2025-11-21", "B", 0.0), ("2025-11-21", "C", 0.0),
        ("2025-11-22", "A", 3.0), ("2025-11-22", "B", 0.0), ("2025-11-22", "C", None),
    ]  # fmt: skip
    changes = results(production, "SELECT date::VARCHAR, account_id, production_health, draft_health "
                      "FROM simulation_changes ORDER BY ALL")  # fmt: skip
    assert changes == [
        ("2025-11-21", "A", "Average", "Good"), ("2025-11-21", "B", "Good", "Average"),
        ("2025-11-22", "A", "Average", "Good"), ("2025-11-22", "B", "Good", "Average"),
    ]  # fmt: skip


def digest_of_folder(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def asset_history() -> dict[str, list[int]]:
    """Every asset's materialisation and observation events in the instance DAGSTER_HOME names, by storage id."""
    with dg.DagsterInstance.get() as instance:
        history = {}
        for key in instance.get_asset_keys():
            events = [
                *instance.fetch_materializations(key, limit=10_000).records,
                *instance.fetch_observations(key, limit=10_000).records,
            ]
            history[key.to_user_string()] = sorted(record.storage_id for record in events)
        runs = [run.job_name for run in instance.get_runs()]
    return history | {"runs": runs}


@pytest.mark.e2e
def test_an_identical_draft_changes_nothing_and_writes_nothing_of_production(production, capsys, monkeypatch):
    draft = production.parent / "identical.yaml"
    draft.write_bytes(production.read_bytes())
    home = production.parent / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with read_only(production) as con:
        warehouse_before = warehouse_digest(con)
    published = load_config(production).published
    published_before, history_before = digest_of_folder(published), asset_history()

    simulate(production, draft, capsys)

    assert results(production, "SELECT count(*) FROM simulation_changes") == [(0,)]
    assert results(production, "SELECT count(*) FROM simulation_transitions "
                   "WHERE production_health IS DISTINCT FROM draft_health") == [(0,)]  # fmt: skip
    # the draft's health is production's, row for row (previous_health included)
    with duckdb.connect(str(simulation_database(load_config(production))), read_only=True) as con:
        con.execute(f"ATTACH '{published / 'analytics.duckdb'}' AS published (READ_ONLY)")
        draft_health = con.execute("SELECT * EXCLUDE (run_id) FROM simulation_health ORDER BY ALL").fetchall()
        production_health = con.execute(
            "SELECT * EXCLUDE (run_id) FROM published.account_health ORDER BY ALL"
        ).fetchall()
    assert draft_health == production_health and len(draft_health) == 8
    for table in ("health_backtest", "health_backtest_churns", "health_backtest_rules"):
        assert backtest_rows(production, "draft", table) == backtest_rows(production, "production", table), table
    # nothing of production changed: the warehouse, the published layer, the assets' history;
    # the instance has one run more, the simulation's
    with read_only(production) as con:
        assert warehouse_digest(con) == warehouse_before
    assert digest_of_folder(published) == published_before
    history_after = asset_history()
    assert history_after.pop("runs") == ["simulate_draft", *history_before.pop("runs")]
    assert history_after == history_before


@pytest.mark.e2e
def test_days_without_metrics_are_a_clear_error(production, capsys):
    draft = write_config(production.parent, THRESHOLD_DRAFT, "threshold.yaml")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(production.parent / "dagster_home"))
        status = cli.main(["--config", str(production), "simulate", "--draft", str(draft), "--start", "2025-11-18"])
    assert status == 1
    assert "no account_metrics in the published layer for 2 day(s) of 2025-11-18..2025-11-22" in capsys.readouterr().err


# --- the draft against production, without a pipeline run ---------------------------------------


def test_what_a_draft_changes_besides_profiles_is_listed_as_ignored(tmp_path):
    production = load_config(write_config(tmp_path, PRODUCTION_PROFILES))
    other = tmp_path / "drafts"
    other.mkdir()
    # relative paths resolve from the draft's folder: not a difference; statuses and limits are
    draft_text = BASE_CONFIG.replace("landing: landing/", "landing: elsewhere/") + (
        "statuses: {Free: [Trial], Paying: [Pro, Enterprise, Personal], Canceled: [Cancelled]}\n"
        "limits: {modules: 5}\n" + CUSTOM_METRIC_DRAFT
    )
    (other / "draft.yaml").write_text(draft_text)
    plan = plan_draft(production, load_config(other / "draft.yaml"))
    assert list(plan.recomputed) == ["invoices"]
    assert plan.ignored == [
        "statuses: differs from production's and is ignored: the stored status groups come from production's "
        "status catalog",
        "limits: differs from production's and is ignored: the stored events were admitted under production's "
        "module/action limits",
    ]


def test_a_custom_metric_defined_as_in_production_is_read_as_stored(tmp_path):
    production = load_config(write_config(tmp_path, CUSTOM_METRIC_DRAFT, "production.yaml"))
    same = load_config(write_config(tmp_path, CUSTOM_METRIC_DRAFT, "same.yaml"))
    wider = load_config(write_config(tmp_path, CUSTOM_METRIC_DRAFT.replace("window: 7", "window: 14"), "wider.yaml"))
    assert plan_draft(production, same).recomputed == {}
    assert list(plan_draft(production, wider).recomputed) == ["invoices"]


def test_a_rule_on_an_attribute_production_does_not_map_is_refused(tmp_path):
    production = load_config(write_config(tmp_path, PRODUCTION_PROFILES))
    draft_text = BASE_CONFIG.replace("segment: Segment__c}", "segment: Segment__c, tier: Tier__c}") + (
        PRODUCTION_PROFILES.replace("poor: [", 'poor: [{metric: tier, op: "==", value: Gold}, ')
    )
    (tmp_path / "draft.yaml").write_text(draft_text)
    with pytest.raises(SimulationError, match=r"draft.yaml: profiles\[0\].poor\[0\].metric: 'tier' is an attribute"):
        plan_draft(production, load_config(tmp_path / "draft.yaml"))


@pytest.mark.e2e
def test_the_job_launched_with_a_run_config_names_a_bad_key(production):
    # as the UI launches it: the job of the code location, its run config naming the draft
    from cs_pipeline.definitions import build_definitions
    from cs_pipeline.lab.simulate_job import SIMULATE_JOB, SIMULATE_OP

    job = build_definitions(load_config(production)).resolve_job_def(SIMULATE_JOB)
    with dg.DagsterInstance.ephemeral() as instance:
        config = {"draft": str(production), "start": "2025-11-31"}
        result = job.execute_in_process(
            run_config={"ops": {SIMULATE_OP: {"config": config}}}, instance=instance, raise_on_error=False
        )
        assert not result.success
        [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
        message = failure.step_failure_data.error.message
        assert "run config ops.simulate.config.start: '2025-11-31' is not a date (YYYY-MM-DD)" in message
        config = {"draft": str(production)}
        result = job.execute_in_process(run_config={"ops": {SIMULATE_OP: {"config": config}}}, instance=instance)
        [output] = [event for event in result.all_events if event.event_type_value == "STEP_OUTPUT"]
        metadata = output.event_specific_data.metadata
        assert (metadata["days"].value, metadata["changed_labels"].value) == (3, 0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--start", "2025-11-22", "--end", "2025-11-21"], "--end 2025-11-21 is before --start 2025-11-22"),
        (["--horizon", "0"], "--horizon 0: the horizon is a number of days, at least 1"),
    ],
)
def test_a_bad_range_or_horizon_is_refused_before_any_run(tmp_path, capsys, options, message):
    config = write_config(tmp_path, PRODUCTION_PROFILES)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
        assert cli.main(["--config", str(config), "simulate", "--draft", str(config), *options]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "dagster_home").exists()
