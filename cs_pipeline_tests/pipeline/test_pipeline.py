"""The pipeline through Dagster: CLI runs land in the instance and fill the warehouse."""

import re

import dagster as dg
import polars as pl
import pytest

from cs_pipeline import cli, schemas
from cs_pipeline.assets_common.schema_checks import schema_check_result
from cs_pipeline.config import load_config
from cs_pipeline.definitions import build_definitions
from cs_pipeline_tests.support.warehouse import table

# One line per run, then one per day with that day's counts. By hand: on the 20th XYZ is active
# (Monthly: Average) and the other four CRM accounts are not (Poor); on the 21st ABC_Widget2 is
# active too, e4 has no account (rejected), ghost (unknown to the CRM) gets no health.
RUN_LINE = re.compile(
    r"the (daily assets|health|subaccount health) of 2025-11-20..2025-11-21: done in [0-9.]+s \(\w+ run \w{8}\)"
)
DAY_LINES = [
    "[1/2] 2025-11-20: 0 good, 1 average, 4 poor, 0 no value; 0 rows rejected, 0 hierarchy issues",
    "[2/2] 2025-11-21: 0 good, 2 average, 3 poor, 0 no value; 1 rows rejected, 0 hierarchy issues",
]


@pytest.mark.e2e
def test_backfill_fills_the_warehouse_and_records_runs(tenant, capfd):
    assert cli.main(["--config", str(tenant), "backfill", "--start", "2025-11-20", "--end", "2025-11-21"]) == 0
    printed = capfd.readouterr()
    lines = printed.out.splitlines()
    assert [RUN_LINE.fullmatch(line).group(1) for line in lines[:3]] == ["daily assets", "health", "subaccount health"]
    assert lines[3:5] == DAY_LINES
    assert re.fullmatch(r"2 day\(s\) in [0-9.]+s; warehouse: .*warehouse.duckdb", lines[5]) and len(lines) == 6
    assert printed.err == ""  # Dagster's log (the rejected row's warning) stays in the instance

    accounts = {row[0]: row for row in table(tenant, "accounts")}
    assert sorted(accounts) == ["ABC", "ABC_Widget1", "ABC_Widget2", "XYZ", "XYZ_Widget1", "ghost"]
    assert accounts["ABC_Widget2"][1:7] == (
        "Acme Boston - Widget 2",
        "ABC",
        "XYZ",
        2,
        ["XYZ", "ABC", "ABC_Widget2"],
        "product",
    )
    assert accounts["ghost"][1:10] == (None, None, "ghost", 0, ["ghost"], "unknown", None, None, "Unknown")

    events = {row[0]: row for row in table(tenant, "usage_events")}
    assert sorted(events) == ["e1", "e2", "e3"]
    # e1 came on both days: the copy of the 20th is the event
    assert events["e1"][7].isoformat() == "2025-11-20"
    # 23:30 at -05:00 on the 20th is 04:30 UTC on the 21st: the event belongs to the 21st
    assert (events["e2"][1].isoformat(), events["e2"][2].isoformat()) == ("2025-11-21T04:30:00+00:00", "2025-11-21")
    assert [(r[0].isoformat(), r[3]) for r in table(tenant, "rejected_events")] == [
        ("2025-11-21", "missing_account_id")
    ]

    users = table(tenant, "users")
    assert [(u[0], u[1], u[2], str(u[3]), str(u[4])) for u in users] == [
        ("ABC_Widget2", "bob@acme.com", None, "2025-11-21", "2025-11-21"),
        ("XYZ", "ann@acme.com", "Ann", "2025-11-20", "2025-11-20"),
        ("ghost", "g1", None, "2025-11-21", "2025-11-21"),
    ]

    instance = dg.DagsterInstance.get()
    runs = instance.get_runs()
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in runs)
    # three runs for the range: the daily job, the health of every day and profile (the tenant
    # has one, default), then the subaccount health
    assert sorted(
        (run.job_name, run.tags["dagster/asset_partition_range_start"], run.tags["dagster/asset_partition_range_end"])
        for run in runs
    ) == [
        ("daily_pipeline", "2025-11-20", "2025-11-21"),
        ("health_pipeline", "2025-11-20|default", "2025-11-21|default"),
        ("subaccount_health_pipeline", "2025-11-20", "2025-11-21"),
    ]
    assert all(run.tags["cs_pipeline/config_path"] == str(tenant) for run in runs)
    # each day's materialisation has that day's own metadata
    records = instance.fetch_materializations(dg.AssetKey("usage_events"), limit=5).records
    metadata = {record.partition_key: record.asset_materialization.metadata for record in records}
    keys = ("rows_written", "rows_rejected", "duplicates")
    counts = {day: tuple(m[key].value for key in keys) for day, m in metadata.items()}
    assert counts == {"2025-11-20": (2, 0, 0), "2025-11-21": (1, 1, 1)}
    assert metadata["2025-11-21"]["dagster/table_name"].value == "main.usage_events"
    # the checks of a range run: one evaluation per day
    checks = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("usage_events"), "usage_events_schema"), limit=5
    )
    assert sorted((check.partition, check.status.value) for check in checks) == [
        ("2025-11-20", "SUCCEEDED"), ("2025-11-21", "SUCCEEDED")
    ]  # fmt: skip


@pytest.mark.e2e
def test_verbose_prints_dagster_s_log_between_the_cli_s_lines(tenant, capfd):
    assert cli.main(["--config", str(tenant), "--verbose", "materialize", "--date", "2025-11-21"]) == 0
    printed = capfd.readouterr()
    assert " - dagster - WARNING - daily_pipeline - " in printed.err
    assert "daily_assets - 1 rows of 2025-11-21 rejected: {" in printed.err
    # the 21st alone (e1 of the 20th not loaded): the day's line as ever, on stdout
    assert re.search(r"^\[1/1\] 2025-11-21: .*; 1 rows rejected, 0 hierarchy issues$", printed.out, re.MULTILINE)


@pytest.mark.e2e
def test_the_embedded_instance_keeps_its_history_when_its_folder_moves(tenant, tmp_path, monkeypatch):
    assert cli.main(["--config", str(tenant), "materialize", "--date", "2025-11-20"]) == 0
    home = tmp_path / "dagster_home"
    # one event log for all runs, beside the run storage; no database per run
    assert sorted(p.name for p in home.glob("*.db")) == ["event_log.db", "runs.db", "schedules.db"]
    moved = home.rename(tmp_path / "moved_home")
    monkeypatch.setenv("DAGSTER_HOME", str(moved))
    instance = dg.DagsterInstance.get()
    assert len(instance.get_runs()) == 3  # the daily job, the default profile, subaccount health
    assert instance.get_latest_materialization_event(dg.AssetKey("users")) is not None
    assert cli.main(["--config", str(tenant), "materialize", "--date", "2025-11-21"]) == 0
    assert len(dg.DagsterInstance.get().get_runs()) == 6
    assert not home.exists()


@pytest.mark.e2e
def test_rerunning_a_day_leaves_every_table_identical(tenant):
    args = ["--config", str(tenant), "backfill", "--start", "2025-11-20", "--end", "2025-11-21"]
    assert cli.main(args) == 0
    tables = ["accounts", "hierarchy_issues", "users", "usage_events", "usage_event_copies", "rejected_events",
              "account_versions", "crm_account_versions", "snapshot_dates", "usage_account_days", "usage_user_days",
              "account_metrics", "account_health", "account_rollups", "status_history", "status_changes",
              "retention_log"]  # fmt: skip
    before = {name: table(tenant, name) for name in tables}
    assert cli.main(["--config", str(tenant), "materialize", "--date", "2025-11-20"]) == 0
    assert {name: table(tenant, name) for name in tables} == before
    # users holds the newest state, which the 21st changed since the 20th first ran; from now
    # on, re-runs write the same rows, and every asset keeps its data version
    versions = data_versions(tenant, "2025-11-20")
    assert cli.main(["--config", str(tenant), "materialize", "--date", "2025-11-20"]) == 0
    assert data_versions(tenant, "2025-11-20") == versions


def data_versions(config, day: str) -> dict[str, tuple[str, str]]:
    """(data version, code version) of each asset's latest materialisation of `day`."""
    instance = dg.DagsterInstance.get()
    found = {}
    # the daily chain's assets; the health lab's (unpartitioned, on demand) has no day
    nodes = [n for n in build_definitions(load_config(config)).resolve_asset_graph().asset_nodes if n.partitions_def]
    for node in nodes:
        partition = day if node.key.path[0] != "account_health" else f"{day}|default"
        [record] = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=node.key, asset_partitions=[partition]), limit=1
        ).records
        tags = record.asset_materialization.tags
        found[node.key.path[0]] = (tags["dagster/data_version"], tags["dagster/code_version"])
    assert all(found[node.key.path[0]][1] == node.code_version for node in nodes)  # the asset's own
    return found


@pytest.mark.e2e
def test_each_run_records_the_config_hash_and_each_materialisation_the_code_and_data_version(tenant):
    assert cli.main(["--config", str(tenant), "materialize", "--date", "2025-11-20"]) == 0
    [run] = dg.DagsterInstance.get().get_runs(filters=dg.RunsFilter(job_name="health_pipeline"))
    assert run.tags["cs_pipeline/config_sha256"] == load_config(tenant).config_hash()
    versions = data_versions(tenant, "2025-11-20")
    assert set(versions) == {
        "crm_snapshot", "accounts", "users", "usage_events", "account_metrics", "account_rollups", "status_history",
        "retention", "account_health", "subaccount_health",
    }  # fmt: skip
    # account_health of the 20th: the rows' count, then a digest of their content
    assert versions["account_health"][0].startswith("5:")


@pytest.mark.e2e
def test_date_outside_the_partitions_is_a_clear_error(tenant, capsys):
    assert cli.main(["--config", str(tenant), "materialize", "--date", "2025-10-01"]) == 1
    assert "2025-10-01 is not a daily partition: they run from 2025-11-01" in capsys.readouterr().err


@pytest.mark.e2e
def test_config_error_names_file_and_key(tenant, capsys):
    tenant.write_text(tenant.read_text().replace("landing:", "landnig:"))
    assert cli.main(["--config", str(tenant), "materialize", "--date", "2025-11-20"]) == 1
    err = capsys.readouterr().err
    assert f"config {tenant}: landnig:" in err and "landing" in err


@pytest.mark.e2e
def test_failed_run_reports_the_file_at_fault(tenant, capsys):
    (tenant.parent / "landing" / "usage" / "date=2025-11-20" / "broken.parquet").write_bytes(b"not parquet")
    assert cli.main(["--config", str(tenant), "materialize", "--date", "2025-11-20"]) == 1
    assert "usage file" in (err := capsys.readouterr().err) and "broken.parquet: cannot be read" in err


def test_schema_check_reports_failing_rows():
    bad = pl.DataFrame(
        {"account_id": ["A"], "issue": ["made_up"], "detail": ["x"]},
    )
    result = schema_check_result(schemas.hierarchy_issues, bad)
    assert not result.passed
    assert result.metadata["failures"].value == 1
    assert "made_up" in result.metadata["failing_checks"].value


def test_schema_check_of_batches_counts_every_batch_and_finds_a_failure_in_a_later_one():
    good = pl.DataFrame({"account_id": ["A", "B"], "issue": ["cycle", "cycle"], "detail": ["x", "y"]})
    bad = pl.DataFrame({"account_id": ["C"], "issue": ["made_up"], "detail": ["z"]})
    assert schema_check_result(schemas.hierarchy_issues, iter([good, good])).metadata["rows_checked"].value == 4
    result = schema_check_result(schemas.hierarchy_issues, iter([good, bad]))
    assert not result.passed
    assert (result.metadata["rows_checked"].value, result.metadata["failures"].value) == (3, 1)
    assert "made_up" in result.metadata["failing_checks"].value


def test_schema_check_of_batches_refuses_a_schema_with_unique_columns():
    # a duplicate split across two batches would pass unseen
    with pytest.raises(ValueError, match="users has unique columns"):
        schema_check_result(schemas.users, iter([]))
