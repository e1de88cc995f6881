"""The embedded instance's event log (cs_pipeline/event_log.py): Dagster's consolidated SQLite
event log read and written through pooled connections with `synchronous = NORMAL`; what it stores
any Dagster storage of the folder reads, a process killed after storing events loses none."""

from __future__ import annotations

import re
import signal
import sys
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.storage.event_log import ConsolidatedSqliteEventLogStorage

from cs_pipeline.cli import EARLIER_EVENT_LOG, EMBEDDED_INSTANCE_YAML, POOLED_EVENT_LOG, CliError, dagster_instance
from cs_pipeline.event_log import PooledSqliteEventLogStorage
from cs_pipeline_tests.support.processes import started

EVENTS = 25


def _store_materializations(instance: dg.DagsterInstance, count: int) -> None:
    for n in range(count):
        instance.report_runless_asset_event(dg.AssetMaterialization("a", partition=f"p{n}", metadata={"n": n}))


def _stored_partitions(home: Path) -> list[str]:
    """The partitions of asset a's materialisations, read by Dagster's own storage of the folder."""
    storage = ConsolidatedSqliteEventLogStorage(str(home))
    try:
        records = storage.fetch_materializations(dg.AssetKey("a"), limit=1000).records
        return sorted(record.asset_materialization.partition for record in records)
    finally:
        storage.dispose()


def test_the_embedded_instance_stores_events_that_dagster_s_own_storage_reads(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    instance = dagster_instance()
    storage = instance.event_log_storage
    assert isinstance(storage, PooledSqliteEventLogStorage)
    _store_materializations(instance, 3)
    with storage.index_connection() as conn:
        # 1 = NORMAL; the database stays in WAL mode (Dagster sets it when creating the file)
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert storage.has_table("event_logs") and not storage.has_table("no_such_table")
    assert _stored_partitions(tmp_path) == ["p0", "p1", "p2"]
    instance.dispose()
    # closed: the last connection's close checkpoints the log into the database
    assert not (tmp_path / "event_log.db-wal").exists()
    assert _stored_partitions(tmp_path) == ["p0", "p1", "p2"]


def test_an_instance_made_with_dagster_s_storage_is_switched_to_the_pooled_one_keeping_its_events(
    tmp_path, monkeypatch
):
    # the dagster.yaml cs-pipeline wrote before event_log.py, with events stored through it
    (tmp_path / "dagster.yaml").write_text(EMBEDDED_INSTANCE_YAML.replace(POOLED_EVENT_LOG, EARLIER_EVENT_LOG))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    earlier = dg.DagsterInstance.get()
    assert type(earlier.event_log_storage) is ConsolidatedSqliteEventLogStorage
    _store_materializations(earlier, 2)
    earlier.dispose()

    instance = dagster_instance()
    assert (tmp_path / "dagster.yaml").read_text() == EMBEDDED_INSTANCE_YAML
    assert isinstance(instance.event_log_storage, PooledSqliteEventLogStorage)
    records = instance.fetch_materializations(dg.AssetKey("a"), limit=10).records
    assert sorted(record.asset_materialization.partition for record in records) == ["p0", "p1"]
    instance.dispose()


STORE_AND_WAIT = f"""
import sys, time
from cs_pipeline.cli import EARLIER_EVENT_LOG, EMBEDDED_INSTANCE_YAML, POOLED_EVENT_LOG, dagster_instance
from cs_pipeline_tests.test_event_log import _store_materializations
_store_materializations(dagster_instance(), {EVENTS})
print("stored", flush=True)
time.sleep(120)
"""


@pytest.mark.e2e
def test_a_process_killed_after_storing_events_loses_none_of_them(tmp_path):
    env = {"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-c", STORE_AND_WAIT]
    with started(command, stdout=-1, text=True, env=env, cwd=Path(__file__).parents[1]) as process:
        assert process.stdout.readline().strip() == "stored"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    # killed with its connections open: no checkpoint, the events are in the log
    assert (tmp_path / "event_log.db-wal").stat().st_size > 0
    assert _stored_partitions(tmp_path) == sorted(f"p{n}" for n in range(EVENTS))


def test_a_relative_dagster_home_or_a_file_is_refused_naming_it_and_nothing_is_created(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", "relative/home")
    expected = f"DAGSTER_HOME must be an absolute path, got 'relative/home': try '{tmp_path}/relative/home'"
    with pytest.raises(CliError, match=re.escape(expected)):
        dagster_instance()
    assert not (tmp_path / "relative").exists()
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "a_file"))
    with pytest.raises(CliError, match=re.escape(f"DAGSTER_HOME '{tmp_path}/a_file' is a file, not a folder")):
        dagster_instance()
