"""The published query layer (docs/data-model.md#published-layer): Parquet files and
analytics.duckdb, written after each step, read by analysts while `cs-pipeline` runs in its
own process."""

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from cs_pipeline.config import ConfigError, parse_config
from cs_pipeline.publish import PUBLISHED
from cs_pipeline_tests.support.tenant import write_events_csv
from cs_pipeline_tests.support.warehouse import read_only

D19, D20, D21 = "2025-11-19", "2025-11-20", "2025-11-21"


def event(event_id: str, ts: str, account_id: str, action: str = "Login", **extra: str) -> dict[str, str]:
    return {"event_id": event_id, "ts": ts, "account_id": account_id, "action": action, **extra}


@pytest.fixture
def tenant(tenant_files: Path) -> Path:
    """The appendix tenant of conftest.py (its config path); 20th: e1 (XYZ), e2 (ABC_Widget2, 04:30
    UTC on the 21st); 21st: e1 again, e3 (ghost), e4 (no account: rejected). No DAGSTER_HOME: `cli`
    runs cs-pipeline in processes of their own, with the instance beside the config."""
    return tenant_files


def cli(config: Path, *arguments: str) -> None:
    """`cs-pipeline` in a process of its own, as an analyst's colleague would run it."""
    env = {**os.environ, "DAGSTER_HOME": str(config.parent / "dagster_home")}
    done = subprocess.run(
        [sys.executable, "-m", "cs_pipeline.cli", "--config", str(config), *arguments],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def published(config: Path) -> Path:
    return config.parent / "published"


def analyst(config: Path) -> duckdb.DuckDBPyConnection:
    return read_only(published(config) / "analytics.duckdb")


def rows(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple]:
    return con.execute(query).fetchall()


def new_session_rows(config: Path, query: str) -> list[list]:
    """A query's rows from a new analyst session in a process of its own."""
    script = (
        "import duckdb, json, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
        "print(json.dumps(con.execute(sys.argv[2]).fetchall()))"
    )
    analytics = str(published(config) / "analytics.duckdb")
    done = subprocess.run([sys.executable, "-c", script, analytics, query], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def partition_files(config: Path, table: str) -> dict[str, int]:
    """Each published file of `table` (path under the table's folder) -> its row count."""
    folder = published(config) / table
    return {str(p.relative_to(folder)): pq.ParquetFile(p).metadata.num_rows for p in sorted(folder.rglob("*.parquet"))}


@pytest.mark.e2e
def test_every_published_table_equals_the_warehouse_table(tenant):
    cli(tenant, "backfill", "--start", D20, "--end", D21)
    with analyst(tenant) as con:
        con.execute(f"ATTACH '{tenant.parent / 'warehouse.duckdb'}' AS warehouse (READ_ONLY)")
        for table in PUBLISHED:
            view = [row[:2] for row in rows(con, f"DESCRIBE SELECT * FROM main.{table}")]
            stored = [row[:2] for row in rows(con, f"DESCRIBE SELECT * FROM warehouse.{table}")]
            assert view == stored, table
            for first, second in (("main", "warehouse"), ("warehouse", "main")):
                extra = rows(con, f"SELECT count(*) FROM (FROM {first}.{table} EXCEPT ALL FROM {second}.{table})")
                assert extra == [(0,)], (table, first)
            [(count,)] = rows(con, f"SELECT count(*) FROM main.{table}")
            assert count == rows(con, f"SELECT count(*) FROM warehouse.{table}")[0][0]
        # the types an analyst meets, beyond DESCRIBE: a MAP, a list, a JSON value, an instant
        path = rows(con, "SELECT path FROM accounts WHERE account_id = 'ABC_Widget2'")
        assert path == [(["XYZ", "ABC", "ABC_Widget2"],)]
        assert rows(con, "SELECT attributes['segment'] FROM accounts WHERE account_id = 'XYZ'") == [("Enterprise",)]
        assert rows(con, "SELECT raw ->> 'event_id', reason FROM rejected_events") == [("e4", "missing_account_id")]
        assert rows(con, "SELECT ts::VARCHAR FROM usage_events WHERE event_id = 'e2'") == [("2025-11-21 04:30:00+00",)]
    # one file per partition, partition values in the path only; the 21st stored e3 (e1 is the 20th's)
    assert partition_files(tenant, "usage_events") == {
        f"partition_date={D20}/part-0.parquet": 2,
        f"partition_date={D21}/part-0.parquet": 1,
    }
    # the 20th without a bad row, the 21st with e4
    assert partition_files(tenant, "rejected_events") == {
        f"partition_date={D20}/part-0.parquet": 0,
        f"partition_date={D21}/part-0.parquet": 1,
    }
    assert partition_files(tenant, "account_health") == {
        f"date={D20}/profile=default/part-0.parquet": 5,
        f"date={D21}/profile=default/part-0.parquet": 5,
    }
    assert partition_files(tenant, "accounts") == {"part-0.parquet": 6}
    health_file = published(tenant) / "account_health" / f"date={D21}" / "profile=default" / "part-0.parquet"
    assert "date" not in pq.read_schema(health_file).names and "profile" not in pq.read_schema(health_file).names
    assert not list(published(tenant).rglob("*.tmp"))
    assert (published(tenant) / "analytics.sql").read_text().count("CREATE OR REPLACE VIEW") == len(PUBLISHED)


@pytest.mark.e2e
def test_analyst_sessions_held_across_runs_keep_working_and_see_the_new_day(tenant):
    cli(tenant, "materialize", "--date", D20)
    session = analyst(tenant)  # held across every run below, never reopened
    parquet_session = duckdb.connect()  # an analyst on the Parquet files, without the views
    events_glob = published(tenant) / "usage_events" / "**" / "*.parquet"
    events_of_day = f"SELECT partition_date, count(*) FROM read_parquet('{events_glob}', hive_partitioning = true) "
    events_of_day += "GROUP BY ALL ORDER BY ALL"
    held_file = (published(tenant) / "usage_events" / f"partition_date={D20}" / "part-0.parquet").open("rb")
    held_reader = pq.ParquetFile(held_file)  # a reader in the middle of a file when a run replaces it
    assert rows(session, "SELECT DISTINCT date FROM account_health") == [(date(2025, 11, 20),)]
    assert rows(parquet_session, events_of_day) == [(date(2025, 11, 20), 2)]

    # the 21st with a new custom metric: account_metrics gains a column, so analytics.duckdb
    # is replaced by a new file while the session holds the old one
    with tenant.open("a") as config:
        config.write("metrics:\n  logins: {count_action: Login}\n")
    cli(tenant, "materialize", "--date", D21)
    health_days = "SELECT date, count(*) FROM account_health GROUP BY date ORDER BY date"
    assert rows(session, health_days) == [(date(2025, 11, 20), 5), (date(2025, 11, 21), 5)]
    assert rows(parquet_session, events_of_day) == [(date(2025, 11, 20), 2), (date(2025, 11, 21), 1)]
    # a new session (another process: this one's connections share the file they opened)
    # has the column; the 20th's file predates it: null there
    query = "SELECT date::VARCHAR, account_id, logins FROM account_metrics WHERE logins <> 0 OR logins IS NULL"
    assert new_session_rows(tenant, query + " ORDER BY ALL") == [
        *[[D20, account, None] for account in ("ABC", "ABC_Widget1", "ABC_Widget2", "XYZ", "XYZ_Widget1")],
        [D21, "ABC_Widget2", 1.0],  # e2, delivered on the 20th, dated the 21st
        [D21, "ghost", 1.0],
    ]

    cli(tenant, "backfill", "--start", D20, "--end", D21)  # re-runs replace their partitions' files
    assert rows(session, health_days) == [(date(2025, 11, 20), 5), (date(2025, 11, 21), 5)]
    assert rows(session, "SELECT count(*), count(DISTINCT event_id) FROM usage_events") == [(3, 3)]
    assert rows(parquet_session, events_of_day) == [(date(2025, 11, 20), 2), (date(2025, 11, 21), 1)]
    # the reader opened before keeps reading the version it opened, whole
    assert sorted(held_reader.read().column("event_id").to_pylist()) == ["e1", "e2"]
    # Polars: a scan built for the query sees the new day
    health = pl.scan_parquet(published(tenant) / "account_health", hive_partitioning=True)
    assert health.group_by("date").len().sort("date").collect().rows() == [
        (date(2025, 11, 20), 5), (date(2025, 11, 21), 5),
    ]  # fmt: skip
    held_file.close()
    session.close()
    parquet_session.close()


@pytest.mark.e2e
def test_changed_other_days_are_republished_and_an_emptied_partition_keeps_an_empty_file(tenant):
    landing = tenant.parent / "landing"
    with tenant.open("a") as config:
        config.write("retention: {free_inactive_days: 1}\n")
    # ABC_Widget2 (a Trial product: Free) has one event, on the 19th: the 20th purges it
    write_events_csv(landing, D19, "a.csv", [event("e2", "2025-11-19T10:00:00Z", "ABC_Widget2")])
    write_events_csv(landing, D20, "a.csv", [
        event("e1", "2025-11-20T10:00:00Z", "XYZ"), event("e6", "2025-11-20T11:00:00Z", "XYZ"),
    ])  # fmt: skip
    write_events_csv(landing, D21, "a.csv", [
        event("e3", "2025-11-21T08:00:00Z", "XYZ"),
        event("e7", "2025-11-20T12:00:00Z", "XYZ"),  # late: dated the 20th
        event("e4", "2025-11-21T08:00:00Z", ""),
    ])  # fmt: skip
    cli(tenant, "backfill", "--start", D19, "--end", D21)

    def published_events() -> dict[str, list[str]]:
        with analyst(tenant) as con:
            found = rows(con, "SELECT partition_date::VARCHAR, list(event_id ORDER BY event_id) FROM usage_events "
                              "GROUP BY ALL")  # fmt: skip
        return dict(found)

    assert published_events() == {D20: ["e1", "e6"], D21: ["e3", "e7"]}
    assert partition_files(tenant, "usage_events") == {
        f"partition_date={D19}/part-0.parquet": 0,  # emptied by retention on the 20th
        f"partition_date={D20}/part-0.parquet": 2,
        f"partition_date={D21}/part-0.parquet": 2,
    }
    with analyst(tenant) as con:
        assert rows(con, "SELECT account_id, purged_on::VARCHAR, rows FROM retention_log") == [("ABC_Widget2", D20, 1)]

    # the 20th re-delivered with e7: the earlier delivery takes it over from the 21st, whose
    # file the 20th's run rewrites
    write_events_csv(landing, D20, "a.csv", [
        event("e1", "2025-11-20T10:00:00Z", "XYZ"), event("e6", "2025-11-20T11:00:00Z", "XYZ"),
        event("e7", "2025-11-20T12:00:00Z", "XYZ"),
    ])  # fmt: skip
    cli(tenant, "materialize", "--date", D20)
    assert published_events() == {D20: ["e1", "e6", "e7"], D21: ["e3"]}
    assert partition_files(tenant, "rejected_events")[f"partition_date={D21}/part-0.parquet"] == 1


@pytest.mark.e2e
def test_a_publish_killed_mid_way_is_completed_by_the_next_step(tenant):
    cli(tenant, "materialize", "--date", D20)
    folder = published(tenant) / "usage_events" / f"partition_date={D20}"
    # as a kill -9 between the commit and the rename leaves it: the partition still queued, a
    # half-written temporary file beside an outdated file
    (folder / ".part-0.parquet.dead.tmp").write_bytes(b"PAR1 half")
    pq.write_table(pq.read_table(folder / "part-0.parquet").slice(0, 1), folder / "part-0.parquet")
    with duckdb.connect(str(tenant.parent / "warehouse.duckdb")) as con:
        con.execute("INSERT INTO publish_queue VALUES ('usage_events', 'partition_date=2025-11-20')")
    cli(tenant, "materialize", "--date", D21)
    assert sorted(os.listdir(folder)) == ["part-0.parquet"]
    assert sorted(pq.read_table(folder / "part-0.parquet").column("event_id").to_pylist()) == ["e1", "e2"]
    with read_only(tenant) as con:
        assert rows(con, "SELECT count(*) FROM publish_queue") == [(0,)]


def test_the_published_folder_is_configurable(tmp_path):
    base = {"crm": {"files_dir": "crm"}, "landing": "landing", "profiles": _profiles()}
    source = tmp_path / "cfg" / "cs.yaml"
    default = parse_config({**base, "warehouse": "wh/warehouse.duckdb"}, source)
    assert default.published == tmp_path / "cfg" / "wh" / "published"
    chosen = parse_config({**base, "warehouse": "w.duckdb", "published": "../share/cs"}, source)
    assert chosen.published == tmp_path / "share" / "cs"
    with pytest.raises(ConfigError) as error:
        parse_config({**base, "warehouse": "w.duckdb", "publshed": "x"}, source)
    assert "publshed: unknown key" in str(error.value) and "did you mean 'published'?" in str(error.value)
    with pytest.raises(ConfigError, match="published: .* holds the warehouse file"):
        parse_config({**base, "warehouse": "w.duckdb", "published": "."}, source)


def _profiles() -> list[dict]:
    return [{"name": "p", "good": [{"metric": "usage_frequency", "op": ">=", "value": "Weekly"}]}]
