"""The production instance: the top-level dagster.yaml, copied unchanged into a DAGSTER_HOME,
records a CLI run of a small generated tenant in PostgreSQL (the DAGSTER_PG_* server).

Needs a PostgreSQL server: `make test` and CI start one with .ci/postgres.sh, which exports
DAGSTER_PG_*. Without one this test fails (it never skips). It works in a database of its
own, created for the test and dropped afterwards, so the runs it finds are its own."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing
from datetime import date

import dagster as dg
import psycopg2
import pytest
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from psycopg2 import sql

from cs_pipeline.config import load_config
from cs_pipeline_tests.support import REPO, processes
from cs_pipeline_tests.support.tenant import write_generated_tenant
from cs_pipeline_tests.support.warehouse import read_only

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

PG_VARIABLES = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USERNAME", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")
HOW_TO_START = (
    "Start one with `.ci/postgres.sh` (as root it installs, starts and sets up a local server; "
    "`.ci/postgres.sh COMMAND` runs COMMAND with DAGSTER_PG_* exported, as `make test` does), "
    "or set DAGSTER_PG_HOST, DAGSTER_PG_PORT, DAGSTER_PG_USERNAME, DAGSTER_PG_PASSWORD and DAGSTER_PG_DB "
    "for a server whose role may CREATE DATABASE."
)
DAYS = ("2025-11-19", "2025-11-20")


def _connect(database: str):
    env = os.environ
    try:
        connection = psycopg2.connect(
            host=env["DAGSTER_PG_HOST"],
            port=env["DAGSTER_PG_PORT"],
            user=env["DAGSTER_PG_USERNAME"],
            password=env["DAGSTER_PG_PASSWORD"],
            dbname=database,
            connect_timeout=5,
        )
    except psycopg2.OperationalError as exc:
        reason = str(exc).replace(env["DAGSTER_PG_PASSWORD"], "***").strip()
    else:
        connection.autocommit = True
        return connection
    where = f"{env['DAGSTER_PG_USERNAME']}@{env['DAGSTER_PG_HOST']}:{env['DAGSTER_PG_PORT']}/{database}"
    pytest.fail(f"PostgreSQL of DAGSTER_PG_* unreachable ({where}): {reason}\n{HOW_TO_START}", pytrace=False)


@pytest.fixture
def pg_database(monkeypatch) -> Iterator[str]:
    """A fresh database on the DAGSTER_PG_* server, named in DAGSTER_PG_DB for the test
    (created from and dropped through the DAGSTER_PG_DB it replaces)."""
    missing = [name for name in PG_VARIABLES if not os.environ.get(name)]
    if missing:
        names = ", ".join(missing)
        pytest.fail(
            f"{names} not set: no PostgreSQL server for the production instance.\n{HOW_TO_START}", pytrace=False
        )
    maintenance = os.environ["DAGSTER_PG_DB"]
    name = f"{maintenance}_test_{uuid.uuid4().hex[:12]}"
    with closing(_connect(maintenance)) as admin:
        admin.cursor().execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    monkeypatch.setenv("DAGSTER_PG_DB", name)
    try:
        yield name
    finally:
        with closing(_connect(maintenance)) as admin:
            admin.cursor().execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_production_instance_records_a_cli_backfill(tmp_path, pg_database, monkeypatch):
    config = write_generated_tenant(tmp_path / "tenant", end_date=date.fromisoformat(DAYS[-1]))
    profiles = load_config(config).profile_names()
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    command = [sys.executable, "-m", "cs_pipeline.cli", "--config", str(config), "backfill",
               "--start", DAYS[0], "--end", DAYS[-1]]  # fmt: skip
    done = processes.run(command, env=os.environ.copy(), timeout=300)
    assert done.returncode == 0, f"cs-pipeline backfill failed:\n{done.stdout}\n{done.stderr}"
    assert f"[2/2] {DAYS[1]}: " in done.stdout

    instance = dg.DagsterInstance.from_config(str(home))
    try:
        # the instance of dagster.yaml: PostgreSQL storage, queued runs, the duckdb pool, retries
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert (instance.run_retries_enabled, instance.run_retries_max_retries) == (True, 2)
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 4

        runs = instance.get_runs()
        assert {run.status for run in runs} == {dg.DagsterRunStatus.SUCCESS}
        # three range runs: the daily assets, the health of every day and profile, the subaccount health
        tags = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")
        ranges = {run.job_name: tuple(run.tags[tag] for tag in tags) for run in runs}
        assert (len(runs), ranges) == (3, {
            "daily_pipeline": DAYS,
            "health_pipeline": (f"{DAYS[0]}|{profiles[0]}", f"{DAYS[-1]}|{profiles[-1]}"),
            "subaccount_health_pipeline": DAYS,
        })  # fmt: skip
        assert {run.tags["cs_pipeline/config_path"] for run in runs} == {str(config)}

        # account_health for every date x profile, the daily assets for every date
        assert instance.get_materialized_partitions(dg.AssetKey("account_health")) == {
            f"{day}|{profile}" for day in DAYS for profile in profiles
        }
        for asset in ("crm_snapshot", "usage_events", "accounts", "users", "account_metrics"):
            assert instance.get_materialized_partitions(dg.AssetKey(asset)) == set(DAYS), asset

        # every warehouse step went through the duckdb pool (limit 1), and left no slot claimed
        pool = instance.event_log_storage.get_concurrency_info("duckdb")
        assert (pool.limit, pool.slot_count, pool.claimed_slots, pool.pending_steps) == (1, 1, [], [])

        # the rows each account_health materialisation reports are in the warehouse
        reported: dict[str, int] = {}
        for record in instance.fetch_materializations(dg.AssetKey("account_health"), limit=100).records:
            materialization = record.asset_materialization
            day = materialization.partition.split("|")[0]
            reported[day] = reported.get(day, 0) + materialization.metadata["dagster/row_count"].value
    finally:
        instance.dispose()

    with read_only(config) as con:
        per_day = "SELECT CAST(date AS VARCHAR), count(*) FROM {} GROUP BY ALL"
        health = dict(con.execute(per_day.format("account_health")).fetchall())
        metrics = dict(con.execute(per_day.format("account_metrics")).fetchall())
    assert sorted(health) == list(DAYS) and all(count > 0 for count in health.values())
    assert health == reported
    assert sorted(metrics) == list(DAYS) and all(metrics[day] >= health[day] for day in DAYS)
