"""account_health end to end: two days through the CLI and Dagster, checked against values
worked out by hand below, with the bundled config (the profiles of demo/cs_pipeline.yaml)."""

from datetime import date

import dagster as dg
import pytest

from cs_pipeline import cli
from cs_pipeline.assets_common.jobs import HEALTH_JOB
from cs_pipeline.config import load_config
from cs_pipeline.definitions import build_definitions
from cs_pipeline_tests.support.tenant import DEMO_CONFIG, write_crm
from cs_pipeline_tests.support.warehouse import read_only

pytestmark = pytest.mark.e2e

PROFILES = ["onboarding", "high_touch", "digital", "default"]


def account(account_id: str, status: str, since: str, **fields: str) -> dict:
    return {"Id": f"sf-{account_id}", "External_Id__c": account_id, "Name": account_id.title(),
            "Status__c": status, "Customer_Since__c": since, **fields}  # fmt: skip


def accounts(risk_of_risk: str) -> list[dict]:
    return [
        account("ENT", "Enterprise", "2024-01-01", Licenses__c="2", Segment__c="Enterprise", CSM_Risk__c="0 - NO RISK"),
        account("RISK", "Enterprise", "2024-01-01", Licenses__c="4", Segment__c="Enterprise", CSM_Risk__c=risk_of_risk),
        account("NEW", "Pro", "2025-11-10"),
        account("DIG", "Pro", "2025-01-01", Licenses__c="4", Segment__c="SMB"),
        account("FREE", "Trial", "2025-01-01"),
        account("GONE", "Cancelled", "2024-01-01"),
    ]


# DIG holds a product on trial: the virtual account DIG_Addon (Free, inherits DIG's attributes).
ASSETS = [{"Id": "02i1", "AccountId": "sf-DIG", "Product2.ProductCode": "Addon", "Status": "Trial"}]


def events(day: str, account_id: str, user: str, count: int, first: int) -> list[dict]:
    return [
        {"event_id": f"e{first + n}", "ts": f"{day}T12:00:00Z", "account_id": account_id, "user_id": user,
         "module": "Core", "action": "Open"}
        for n in range(count)
    ]  # fmt: skip


@pytest.fixture
def tenant_config() -> str:
    return DEMO_CONFIG


@pytest.fixture
def tenant_crm() -> None:
    """No CRM export yet: `run_day` writes it as it is on the day it runs."""
    return None


@pytest.fixture
def tenant_deliveries() -> dict[str, list[dict]]:
    """Deliveries: 2025-11-19 holds the 19th's events and one late event of NEW (the 15th);
    2025-11-20 holds the 20th's events and an unknown account."""
    return {
        "2025-11-19": events("2025-11-19", "ENT", "a1", 7, 100) + events("2025-11-19", "ENT", "a2", 7, 200)
        + events("2025-11-19", "RISK", "r1", 14, 300) + events("2025-11-15", "NEW", "n1", 1, 400)
        + events("2025-11-19", "DIG", "d1", 7, 500),
        "2025-11-20": events("2025-11-20", "ENT", "a1", 14, 600) + events("2025-11-20", "RISK", "r1", 14, 700)
        + events("2025-11-20", "DIG", "d1", 7, 800) + events("2025-11-20", "ghost", "g1", 1, 900),
    }  # fmt: skip


@pytest.fixture
def tenant(tenant_files, dagster_home):
    """conftest.py's `tenant` under the bundled demo config, as its folder (not its config path)."""
    return tenant_files.parent


def run_day(tenant, day: str, risk_of_risk: str) -> None:
    """The CRM as it is when the day runs (the snapshot is taken then), then every asset and profile."""
    write_crm(tenant / "crm", accounts(risk_of_risk), ASSETS)
    assert cli.main(["--config", str(tenant / "cs_pipeline.yaml"), "materialize", "--date", day]) == 0


def health_rows(tenant, day: str) -> dict[str, tuple]:
    with read_only(tenant) as con:
        rows = con.execute(
            "SELECT account_id, profile, health, health_score, dimension_scores, reasons, previous_health "
            "FROM account_health WHERE date = ? ORDER BY account_id",
            [date.fromisoformat(day)],
        ).fetchall()
    return {row[0]: row[1:] for row in rows}


def test_two_days_of_health_match_the_hand_computed_values(tenant, capsys):
    # On the 19th RISK's CSM risk is '0 - NO RISK'; on the 20th the CRM says '3 - HIGH'.
    run_day(tenant, "2025-11-19", "0 - NO RISK")
    run_day(tenant, "2025-11-20", "3 - HIGH")
    assert "] 2025-11-20: " in capsys.readouterr().out

    # 19th. ENT and RISK (Enterprise peers) each 14 events in window 14: avg 1, a tie, both 100;
    # one active day -> Monthly, so the good rule on usage_frequency fails: Average.
    # NEW (age 9): n1 was active on the 15th, within window 7: Good.
    # DIG: 7 events / 14 days < 1 -> engagement 0 (Poor 0), Monthly (Average 60): usage 30;
    # 1 user / 4 licenses = 25.0 (Average 60): adoption 60; overall (2*30 + 60) / 3 = 40 -> Poor.
    # FREE and DIG_Addon: no events -> Inactive -> Poor (default profile). GONE is Canceled.
    assert health_rows(tenant, "2025-11-19") == {
        "DIG": ("digital", "Poor", 40, {"usage": 30, "adoption": 60}, [
            "usage/engagement_score: Poor (< 10, value 0)",
            "usage/usage_frequency: Average (value 'Monthly')",
            "adoption/license_utilization: Average (value 25.0)",
        ], None),
        "DIG_Addon": ("default", "Poor", None, {}, ["usage_frequency == 'Inactive' (value 'Inactive')"], None),
        "ENT": ("high_touch", "Average", None, {}, [
            "engagement_score < 10 (value 100)",
            "csm_risk in ['3 - HIGH', '4 - CRITICAL'] (value '0 - NO RISK')",
            "usage_frequency >= 'Weekly' (value 'Monthly')",
        ], None),
        "FREE": ("default", "Poor", None, {}, ["usage_frequency == 'Inactive' (value 'Inactive')"], None),
        "NEW": ("onboarding", "Good", None, {}, ["active_users_7d >= 1 (value 1)"], None),
        "RISK": ("high_touch", "Average", None, {}, [
            "engagement_score < 10 (value 100)",
            "csm_risk in ['3 - HIGH', '4 - CRITICAL'] (value '0 - NO RISK')",
            "usage_frequency >= 'Weekly' (value 'Monthly')",
            "license_utilization >= 50 (value 25.0)",
        ], None),
    }  # fmt: skip

    # 20th. ENT: 28 events (avg 2), 2 active days (Weekly), 2 users / 2 licenses = 100.0, no
    # risk: every good rule holds -> Good. RISK: also avg 2 (tie: 100) but CSM risk '3 - HIGH'
    # -> Poor. NEW (age 10) still Good. DIG: 14 events / 14 = avg 1, its only peer (NEW's
    # avg 1/11 < 1) -> engagement 100 (Good), Weekly (Good): usage 100; adoption 60;
    # overall (2*100 + 60) / 3 = 86.67 -> 87 -> Good. The unknown `ghost` gets no health.
    assert health_rows(tenant, "2025-11-20") == {
        "DIG": ("digital", "Good", 87, {"usage": 100, "adoption": 60}, [
            "usage/engagement_score: Good (>= 60, value 100)",
            "usage/usage_frequency: Good (>= 'Weekly', value 'Weekly')",
            "adoption/license_utilization: Average (value 25.0)",
        ], "Poor"),
        "DIG_Addon": ("default", "Poor", None, {}, ["usage_frequency == 'Inactive' (value 'Inactive')"], "Poor"),
        "ENT": ("high_touch", "Good", None, {}, [
            "usage_frequency >= 'Weekly' (value 'Weekly')",
            "engagement_score >= 60 (value 100)",
            "license_utilization >= 50 (value 100.0)",
            "csm_risk in ['0 - NO RISK'] (value '0 - NO RISK')",
        ], "Average"),
        "FREE": ("default", "Poor", None, {}, ["usage_frequency == 'Inactive' (value 'Inactive')"], "Poor"),
        "NEW": ("onboarding", "Good", None, {}, ["active_users_7d >= 1 (value 1)"], "Good"),
        "RISK": ("high_touch", "Poor", None, {}, ["csm_risk in ['3 - HIGH', '4 - CRITICAL'] (value '3 - HIGH')"],
                 "Average"),
    }  # fmt: skip

    instance = dg.DagsterInstance.get()
    # one health run a day, of every profile
    health_runs = [run for run in instance.get_runs() if run.job_name == "health_pipeline"]
    assert sorted(
        (run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"])
        for run in health_runs
    ) == [(f"{day}|{PROFILES[0]}", f"{day}|{PROFILES[-1]}") for day in ("2025-11-19", "2025-11-20")]
    [record] = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("account_health"), asset_partitions=["2025-11-20|high_touch"]),
        limit=1,
    ).records
    metadata = {key: value.value for key, value in record.asset_materialization.metadata.items()}
    assert {key: metadata[key] for key in ("rows_written", "good", "average", "poor", "no_value", "turned_poor")} == {
        "rows_written": 2, "good": 1, "average": 0, "poor": 1, "no_value": 0, "turned_poor": 1,
    }  # fmt: skip


def test_rerunning_a_date_and_profile_leaves_the_table_identical(tenant):
    run_day(tenant, "2025-11-19", "0 - NO RISK")
    run_day(tenant, "2025-11-20", "0 - NO RISK")

    def table() -> list[tuple]:
        with read_only(tenant) as con:
            return con.execute("SELECT * EXCLUDE (run_id) FROM account_health ORDER BY ALL").fetchall()

    before = table()
    job = build_definitions(load_config(tenant / "cs_pipeline.yaml")).resolve_job_def(HEALTH_JOB)
    for profile in PROFILES:
        key = dg.MultiPartitionKey({"date": "2025-11-20", "profile": profile})
        assert job.execute_in_process(partition_key=key, instance=dg.DagsterInstance.get()).success
    assert table() == before


def test_a_day_written_again_after_the_next_sets_the_next_days_previous_health(tenant):
    """previous_health stays the health stored the day before, whatever order the days are
    written in: the 19th re-run after the 20th with RISK at '3 - HIGH' turns RISK Poor on the
    19th, and the 20th's RISK row now says it was Poor the day before (it said Average)."""
    run_day(tenant, "2025-11-19", "0 - NO RISK")
    run_day(tenant, "2025-11-20", "3 - HIGH")
    before = health_rows(tenant, "2025-11-20")
    assert before["RISK"][-1] == "Average"

    run_day(tenant, "2025-11-19", "3 - HIGH")

    assert health_rows(tenant, "2025-11-19")["RISK"][1] == "Poor"
    after = health_rows(tenant, "2025-11-20")
    assert after["RISK"] == (*before["RISK"][:-1], "Poor")
    assert {account: row for account, row in after.items() if account != "RISK"} == {
        account: row for account, row in before.items() if account != "RISK"
    }
