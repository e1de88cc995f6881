"""Range runs give the tables of day-by-day runs (docs/operations.md#range-runs): one tenant with
late events, a re-delivered event, a retention purge (and the purged event delivered again), the
module limit, a day materialised out of order and a CRM change mid-range (dated exports), run
once as one `materialize` per day and once as range backfills over the same sequence of days;
every public table, in the warehouse and in the published layer, is equal (rows sorted, run_id
aside). And, through the instance, a range run recorded every partition with its own metadata."""

from __future__ import annotations

import hashlib
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest

from cs_pipeline import cli
from cs_pipeline_tests.support.commands import public_tables
from cs_pipeline_tests.support.tenant import APPENDIX_ACCOUNTS, CONFIG, write_crm, write_events_csv
from cs_pipeline_tests.support.warehouse import rows

pytestmark = pytest.mark.e2e

PROFILES = ("onboarding", "default")
RANGE_CONFIG = CONFIG.replace(
    "profiles:\n",
    "limits: {modules: 2, actions: 500}\nretention: {free_inactive_days: 3}\nprofiles:\n"
    "  - name: onboarding\n    when: [{metric: account_age_days, op: '<', value: 30}]\n"
    "    good: [{metric: active_users_7d, op: '>=', value: 1}]\n",
)
FREE = {"Id": "001F", "External_Id__c": "FREE1", "Name": "Free One", "Status__c": "Trial",
        "Customer_Since__c": "2025-10-01"}  # fmt: skip
NEW = {"Id": "001N", "External_Id__c": "NEW1", "Name": "New One", "Status__c": "Pro",
       "Customer_Since__c": "2025-11-05"}  # fmt: skip


def event(event_id: str, ts: str, account: str, module: str = "Billing", user: str = "u1") -> dict[str, str]:
    return {"event_id": event_id, "ts": ts, "account_id": account, "user_id": user, "module": module,
            "action": "Send invoice"}  # fmt: skip


# Deliveries of 1..8 November: late events (dated before their delivery day), e1 delivered again
# on the 2nd, FREE1 inactive from the 2nd (purged once 3 days pass without an event) and its
# purged f1 delivered again on the 6th, a third module (the limit is 2) on the 4th and the 7th.
DELIVERIES = {
    "2025-11-01": [event("e1", "2025-11-01T09:00:00Z", "XYZ"), event("f1", "2025-11-01T10:00:00Z", "FREE1"),
                   event("e2", "2025-11-01T11:00:00Z", "ABC", module="Clients")],
    "2025-11-02": [event("e3", "2025-11-02T09:00:00Z", "XYZ"), event("l1", "2025-10-30T09:00:00Z", "XYZ"),
                   event("e1", "2025-11-01T09:00:00Z", "XYZ")],
    "2025-11-03": [event("e4", "2025-11-03T09:00:00Z", "ABC"), event("l2", "2025-11-01T12:00:00Z", "ABC")],
    "2025-11-04": [event("e5", "2025-11-04T09:00:00Z", "XYZ", module="Reports"),
                   event("e6", "2025-11-04T10:00:00Z", "XYZ", module="Billing", user="u2")],
    "2025-11-05": [event("e7", "2025-11-05T09:00:00Z", "NEW1"), event("e8", "2025-11-05T09:30:00Z", "ABC")],
    "2025-11-06": [event("f1", "2025-11-01T10:00:00Z", "FREE1"), event("e9", "2025-11-06T09:00:00Z", "XYZ")],
    "2025-11-07": [event("e10", "2025-11-07T09:00:00Z", "ABC", module="Reports"),
                   event("l3", "2025-11-05T09:00:00Z", "NEW1")],
    "2025-11-08": [event("e11", "2025-11-08T09:00:00Z", "XYZ")],
}  # fmt: skip
# The same days in the same order, day by day and as ranges: the 5th before the 4th, then again.
DAY_BY_DAY = [("2025-11-01", "2025-11-01"), ("2025-11-02", "2025-11-02"), ("2025-11-03", "2025-11-03"),
              ("2025-11-05", "2025-11-05"), ("2025-11-04", "2025-11-04"), ("2025-11-05", "2025-11-05"),
              ("2025-11-06", "2025-11-06"), ("2025-11-07", "2025-11-07"), ("2025-11-08", "2025-11-08")]  # fmt: skip
RANGES = [("2025-11-01", "2025-11-03"), ("2025-11-05", "2025-11-05"), ("2025-11-04", "2025-11-08")]


def write_range_tenant(root: Path) -> Path:
    """The tenant: a CRM export dated the 1st, another dated the 5th (ABC cancelled, NEW1 new)."""
    acme, boston = APPENDIX_ACCOUNTS
    write_crm(root / "crm" / "date=2025-11-01", [acme, boston, FREE])
    write_crm(root / "crm" / "date=2025-11-05", [acme, {**boston, "Status__c": "Cancelled"}, FREE, NEW])
    for day, events in DELIVERIES.items():
        write_events_csv(root / "landing", day, "a.csv", events)
    config = root / "cs_pipeline.yaml"
    config.write_text(RANGE_CONFIG)
    return config


def run(root: Path, spans: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    config = str(root / "cs_pipeline.yaml")
    for start, end in spans:
        command = ["materialize", "--date", start] if start == end else ["backfill", "--start", start, "--end", end]
        assert cli.main(["--config", config, *command]) == 0


def digests(root: Path) -> dict[str, str]:
    """Every public table (warehouse and published layer) as a digest of its sorted rows, run_id aside."""
    return {name: hashlib.sha256(repr(found).encode()).hexdigest() for name, found in public_tables(root).items()}


@pytest.fixture(scope="module")
def ranged(tmp_path_factory) -> Path:
    """The tenant after the range backfills."""
    root = tmp_path_factory.mktemp("ranged")
    write_range_tenant(root)
    with pytest.MonkeyPatch.context() as monkeypatch:
        run(root, RANGES, monkeypatch)
    return root


def test_range_backfills_give_every_public_table_of_day_by_day_runs(ranged, tmp_path, monkeypatch):
    day_by_day = tmp_path / "day_by_day"
    write_range_tenant(day_by_day)
    run(day_by_day, DAY_BY_DAY, monkeypatch)

    # the tenant does what it is meant to: every case is in the tables
    # FREE1's last event is of the 1st: purged by the first day run with 3 days without (the 5th, run before the 4th)
    assert rows(ranged, "SELECT account_id, purged_on FROM retention_log") == [("FREE1", date(2025, 11, 5))]
    assert rows(ranged, "SELECT count(*) FROM usage_events WHERE account_id = 'FREE1'") == [(0,)]
    assert rows(ranged, "SELECT partition_date FROM rejected_events WHERE reason = 'module_limit' ORDER BY 1") == [
        (date(2025, 11, 4),), (date(2025, 11, 7),)
    ]  # e5 and e10: the module Reports, third after Billing and Clients
    assert rows(ranged, "SELECT count(*) FROM usage_events WHERE event_date < partition_date") == [(3,)]
    assert rows(ranged, "SELECT date, account_id, kind FROM status_changes WHERE date > '2025-11-01' ORDER BY ALL") == [
        (date(2025, 11, 5), "ABC", "churn"), (date(2025, 11, 5), "NEW1", "new")
    ]  # fmt: skip
    assert rows(ranged, "SELECT count(DISTINCT date) FROM account_health") == [(8,)]

    found, expected = digests(ranged), digests(day_by_day)
    assert found == expected, [name for name in expected if found.get(name) != expected[name]]
    for root in (ranged, day_by_day):  # the event keys in step with the events after all of it (event_keys.py)
        keys = rows(root, "SELECT partition_date, event_key FROM usage_event_keys ORDER BY ALL")
        assert keys == rows(root, "SELECT partition_date, hash(event_id) FROM usage_events ORDER BY ALL")


def test_a_range_run_records_each_partition_with_its_own_metadata(ranged, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(ranged / "dagster_home"))
    instance = dg.DagsterInstance.get()
    days = [(date(2025, 11, 4) + timedelta(days=n)).isoformat() for n in range(5)]  # the last range
    [health_run] = instance.get_runs(
        dg.RunsFilter(job_name="health_pipeline", tags={"dagster/asset_partition_range_start": "2025-11-04|onboarding"})
    )

    records = instance.fetch_materializations(
        dg.AssetKey("account_health"), limit=100
    ).records
    in_run = {r.partition_key: r.asset_materialization.metadata for r in records if r.run_id == health_run.run_id}
    assert sorted(in_run) == sorted(f"{day}|{profile}" for day in days for profile in PROFILES)
    for key, metadata in in_run.items():
        day, profile = key.split("|")
        counts = Counter(
            dict(rows(ranged, "SELECT health, count(*) FROM account_health WHERE date = ? AND profile = ? GROUP BY 1",
                      [day, profile]))
        )  # fmt: skip
        assert metadata["rows_written"].value == metadata["dagster/row_count"].value == sum(counts.values()), key
        found = [metadata[key].value for key in ("good", "average", "poor", "no_value")]
        assert found == [counts["Good"], counts["Average"], counts["Poor"], counts["No value"]], key

    [daily_run] = instance.get_runs(
        dg.RunsFilter(job_name="daily_pipeline", tags={"dagster/asset_partition_range_start": "2025-11-04"})
    )
    for asset, key, expected in (
        # rows read from each day's delivery, as delivered
        ("usage_events", "rows_read", {day: len(DELIVERIES[day]) for day in days}),
        # each day's own rows
        ("account_metrics", "rows_written", {day: rows(ranged, "SELECT count(*) FROM account_metrics WHERE date = ?",
                                                        [day])[0][0] for day in days}),
        # the accounts of the day's snapshot: XYZ, ABC, FREE1 from the export of the 1st; NEW1 too from the 5th
        ("accounts", "snapshot_accounts", {day: 3 if day < "2025-11-05" else 4 for day in days}),
    ):  # fmt: skip
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=100).records
        in_daily_run = [r for r in records if r.run_id == daily_run.run_id]
        found = {r.partition_key: r.asset_materialization.metadata[key].value for r in in_daily_run}
        assert found == expected, asset
    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("account_health"), "account_health_schema"), limit=100
    )
    assert sorted(c.partition for c in checks if c.run_id == health_run.run_id) == sorted(in_run)
