"""Status history and changes (docs/lifecycle.md) on a real warehouse file; the lifecycle and roll-up
steps' clear error when their input day is missing."""

from datetime import date

import pytest

from cs_pipeline.config import load_config
from cs_pipeline.lifecycle.retention import purge_inactive_free_accounts
from cs_pipeline.lifecycle.status_history import record_status_history
from cs_pipeline.rollups.account_rollups import compute_account_rollups, compute_subaccount_health
from cs_pipeline.warehouse import InputsMissing, connect
from cs_pipeline_tests.support.snapshots import store_account_snapshot
from cs_pipeline_tests.support.tenant import write_tenant

GROUPS = {
    "Trial": "Free", "Pro": "Paying", "Enterprise": "Paying", "Cancelled": "Canceled", None: "Unknown",
    "Legacy": "Unknown", "Frozen": "Unknown",  # not in the catalog
}  # fmt: skip


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "warehouse.duckdb") as con:
        yield con


def snapshot(con, day: str, statuses: dict[str, str | None]) -> None:
    """The account snapshot of one day: each account a root with the given status."""
    store_account_snapshot(
        con,
        day,
        [
            {"account_id": account, "account_type": "account", "status": status, "status_group": GROUPS[status]}
            for account, status in statuses.items()
        ],
    )


def changes(con, day: str) -> dict[str, tuple]:
    rows = con.execute(
        "SELECT account_id, kind, previous_date, previous_status, status FROM status_changes WHERE date = ?", [day]
    ).fetchall()
    return {account: (kind, str(prev_date), prev, status) for account, kind, prev_date, prev, status in rows}


DAY1 = {"A": "Trial", "B": "Pro", "C": "Cancelled", "D": "Pro", "E": "Enterprise", "F": None, "G": "Pro", "X": "Pro",
        "U": "Legacy", "V": None}  # fmt: skip
DAY2 = {"A": "Pro", "B": "Cancelled", "C": "Trial", "D": "Trial", "E": "Pro", "F": "Pro", "G": "Pro", "N": "Trial",
        "U": "Frozen", "V": "Legacy"}  # fmt: skip


def test_each_change_kind_against_the_previous_snapshot(con):
    snapshot(con, "2025-11-01", DAY1)
    snapshot(con, "2025-11-02", DAY2)
    first = record_status_history(con, snapshot_date=date(2025, 11, 1), run_id="run-1")
    assert first["new"] == 10 and sum(first.values()) == 10
    second = record_status_history(con, snapshot_date=date(2025, 11, 2), run_id="run-2")

    assert changes(con, "2025-11-02") == {
        "A": ("conversion", "2025-11-01", "Trial", "Pro"),
        "B": ("churn", "2025-11-01", "Pro", "Cancelled"),
        "C": ("reactivation", "2025-11-01", "Cancelled", "Trial"),
        "D": ("downgrade", "2025-11-01", "Pro", "Trial"),
        "E": ("plan_change", "2025-11-01", "Enterprise", "Pro"),
        "F": ("unclassified", "2025-11-01", None, "Pro"),  # from no status: no group to compare
        "U": ("unclassified", "2025-11-01", "Legacy", "Frozen"),  # within Unknown: no plan of the catalog
        "V": ("unclassified", "2025-11-01", None, "Legacy"),
        "N": ("new", "None", None, "Trial"),  # absent from the previous snapshot
    }  # G kept its status: no change; X was deleted in the CRM: no row on the 2nd
    assert second == {
        "new": 1, "conversion": 1, "churn": 1, "reactivation": 1, "downgrade": 1, "plan_change": 1, "unclassified": 3
    }  # fmt: skip
    history = con.execute("SELECT account_id, status, status_group FROM status_history WHERE date = '2025-11-02'")
    assert sorted(history.fetchall(), key=str) == sorted([(a, s, GROUPS[s]) for a, s in DAY2.items()], key=str)


def test_a_day_materialised_late_becomes_the_next_days_predecessor(con):
    snapshot(con, "2025-11-01", {"A": "Trial"})
    snapshot(con, "2025-11-02", {"A": "Pro"})
    snapshot(con, "2025-11-03", {"A": "Enterprise"})
    record_status_history(con, snapshot_date=date(2025, 11, 1), run_id="r")
    record_status_history(con, snapshot_date=date(2025, 11, 3), run_id="r")
    assert changes(con, "2025-11-03") == {"A": ("conversion", "2025-11-01", "Trial", "Enterprise")}

    record_status_history(con, snapshot_date=date(2025, 11, 2), run_id="r")
    assert changes(con, "2025-11-02") == {"A": ("conversion", "2025-11-01", "Trial", "Pro")}
    assert changes(con, "2025-11-03") == {"A": ("plan_change", "2025-11-02", "Pro", "Enterprise")}


def test_rerunning_a_snapshot_date_leaves_the_tables_identical(con):
    snapshot(con, "2025-11-01", DAY1)
    snapshot(con, "2025-11-02", DAY2)
    for day in (date(2025, 11, 1), date(2025, 11, 2)):
        record_status_history(con, snapshot_date=day, run_id="r")
    before = [con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ("status_history", "status_changes")]
    record_status_history(con, snapshot_date=date(2025, 11, 2), run_id="r")
    after = [con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in ("status_history", "status_changes")]
    assert after == before


def test_a_step_whose_inputs_are_missing_names_the_table_and_the_day(con, tmp_path):
    day = date(2025, 11, 20)
    with pytest.raises(InputsMissing, match="no account_metrics rows for 2025-11-20: materialise account_metrics"):
        purge_inactive_free_accounts(con, as_of=day, inactive_days=90, run_id="r")
    with pytest.raises(InputsMissing, match="no account_metrics rows for 2025-11-20"):
        compute_account_rollups(con, as_of=day, run_id="r")
    with pytest.raises(InputsMissing, match="no account_health rows for 2025-11-20: materialise account_health"):
        compute_subaccount_health(con, load_config(write_tenant(tmp_path / "t")), as_of=day, run_id="r")
