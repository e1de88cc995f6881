"""Roll-ups over a 3-level hierarchy with product accounts (docs/metrics.md#roll-up-metrics,
docs/health.md#sub-account-health), through the CLI, with values computed by hand: a user
active in several accounts of a subtree counts once, rules may use roll-up metrics (calculated
parent health), and subaccount_health comes by contract value (the config) and by count."""

from datetime import date

import pytest

from cs_pipeline import cli
from cs_pipeline.config import load_config
from cs_pipeline.rollups.account_rollups import compute_subaccount_health
from cs_pipeline.warehouse import connect
from cs_pipeline_tests.support.tenant import APPENDIX_ACCOUNTS, APPENDIX_ASSETS, write_tenant
from cs_pipeline_tests.support.warehouse import rows

pytestmark = pytest.mark.e2e

CONFIG = """\
crm: {source: files, files_dir: crm/}
landing: landing/
warehouse: warehouse.duckdb
start_date: "2025-11-01"
profiles:
  - name: parents   # calculated parent health: the parent's own profile on roll-up metrics
    when: [{metric: rollup_events_30d, op: ">=", value: 5}]
    good: [{metric: rollup_active_users_30d, op: ">=", value: 4}]
  - name: default
    good: [{metric: events_30d, op: ">=", value: 2}]
    poor: [{metric: events_30d, op: "<", value: 2}]
rollups: {subaccount_health: {by: contract_value, poor_share: 0.5, good_share: 0.5}}
"""
# XYZ (root) > ABC > ABC_Widget1, ABC_Widget2; XYZ > XYZ_Widget1; P (root) > Q (Cancelled)
ACCOUNTS = [
    *APPENDIX_ACCOUNTS,
    {"Id": "001C", "External_Id__c": "P", "Name": "Parent", "Status__c": "Pro", "Customer_Since__c": "2024-01-01"},
    {"Id": "001D", "External_Id__c": "Q", "Name": "Quit", "ParentId": "001C", "Status__c": "Cancelled",
     "Customer_Since__c": "2024-01-01", "Licenses__c": "0"},
]  # fmt: skip
ASSETS = [{**a, "Price": "40000"} if a["Id"] == "02i3" else a for a in APPENDIX_ASSETS]  # ABC_Widget1 at 40,000
EVENTS = [
    ("XYZ", "ann@acme.com"), ("XYZ", "ann@acme.com"), ("XYZ_Widget1", "ann@acme.com"), ("ABC", "bob@acme.com"),
    ("ABC_Widget1", "bob@acme.com"), ("ABC_Widget1", "carl@acme.com"), ("ABC_Widget2", "dana@acme.com"),
]  # fmt: skip


@pytest.fixture(scope="module")
def tenant(tmp_path_factory):
    """The tenant above (no contacts), its 2025-11-20 run through the CLI (in an instance of its own)."""
    root = tmp_path_factory.mktemp("rollups")
    write_tenant(root, config=CONFIG, crm=(ACCOUNTS, ASSETS, ()), deliveries={"2025-11-20": [
        {"event_id": f"e{n}", "ts": f"2025-11-20T0{n}:00:00Z", "account_id": account, "user_id": user,
         "action": "Login"}
        for n, (account, user) in enumerate(EVENTS)
    ]})  # fmt: skip
    mp = pytest.MonkeyPatch()
    mp.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    assert (
        cli.main(
            ["--config", str(root / "cs_pipeline.yaml"), "backfill", "--start", "2025-11-20", "--end", "2025-11-20"]
        )
        == 0
    )
    mp.undo()
    return root


def test_rollup_metrics_over_each_subtree(tenant):
    assert rows(tenant, "SELECT account_id, descendants, rollup_events_30d, rollup_active_users_30d, rollup_licenses, "
                "rollup_contract_value, rollup_license_utilization FROM account_rollups ORDER BY account_id") == [
        # bob, carl, dana (per-account active users would sum to 4); licenses 10 + 5 + null
        ("ABC", 2, 4, 3, 15.0, 70000.0, 20.0),
        # a Cancelled child still counts in the sums; licenses 0 give no utilization
        ("P", 1, 0, 0, 0.0, None, None),
        # ann (3 events in XYZ and XYZ_Widget1) counts once: 4 users, not 6; 50 + 20 + 15 licenses
        ("XYZ", 4, 7, 4, 85.0, 195000.0, 100 * 4 / 85),
    ]  # fmt: skip


def test_parent_health_calculated_from_rollup_metrics(tenant):
    assert rows(tenant, "SELECT account_id, profile, health FROM account_health ORDER BY account_id") == [
        ("ABC", "default", "Poor"),  # 4 subtree events: not a `parents` account
        ("ABC_Widget1", "default", "Good"),
        ("ABC_Widget2", "default", "Poor"),
        ("P", "default", "Poor"),
        ("XYZ", "parents", "Good"),  # 7 subtree events, 4 subtree users
        ("XYZ_Widget1", "default", "Poor"),
    ]  # Q is Cancelled: no health


def test_subaccount_health_by_contract_value(tenant):
    assert rows(tenant, "SELECT account_id, descendants_good, descendants_average, descendants_poor, subaccount_health "
                "FROM account_rollups ORDER BY account_id") == [
        ("ABC", 1, 0, 1, "Good"),  # Good ABC_Widget1 weighs 40,000, Poor ABC_Widget2 nothing
        ("P", 0, 0, 0, None),  # no scored descendant
        # Poor: ABC 30,000 + XYZ_Widget1 5,000 = 35,000 of 75,000 (0.47, not above 0.5);
        # Good: 40,000 of 75,000 (0.53, at least 0.5)
        ("XYZ", 1, 0, 3, "Good"),
    ]  # fmt: skip


def test_subaccount_health_by_count(tenant, tmp_path):
    config_path = tenant / "cs_pipeline.yaml"
    by_count = tmp_path / "cs_pipeline.yaml"
    by_count.write_text(config_path.read_text().replace("by: contract_value", "by: count"))
    copy = tmp_path / "warehouse.duckdb"
    copy.write_bytes((tenant / "warehouse.duckdb").read_bytes())
    with connect(copy) as con:
        labels = compute_subaccount_health(con, load_config(by_count), as_of=date(2025, 11, 20), run_id="r")
        found = con.execute("SELECT account_id, subaccount_health FROM account_rollups ORDER BY account_id").fetchall()
    # XYZ: 3 Poor of 4 (0.75 > 0.5); ABC: 1 Poor of 2 is not above 0.5, 1 Good of 2 reaches it
    assert found == [("ABC", "Good"), ("P", None), ("XYZ", "Poor")]
    assert labels == {"Good": 1, "Average": 0, "Poor": 1, None: 1}
