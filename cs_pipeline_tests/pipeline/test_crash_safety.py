"""Crash safety: a command killed at any moment is completed by the next one, with the tables
an uninterrupted run gives; a dead run's pool slot is freed; nothing waits forever."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from dagster._core.events import EngineEventData
from dagster._daemon.monitoring.run_monitoring import monitor_started_run

from cs_pipeline import runs
from cs_pipeline.cli import dagster_instance
from cs_pipeline_tests.support.commands import COMMAND_TIMEOUT, Command, public_tables
from cs_pipeline_tests.support.tenant import write_generated_tenant

pytestmark = pytest.mark.e2e

DAYS = ("2025-11-03", "2025-11-05")  # the backfill of every test: three days


@pytest.fixture(scope="module")
def stocked(tmp_path_factory) -> Path:
    """A generated tenant of 12 accounts and three days, never run."""
    root = tmp_path_factory.mktemp("stocked")
    write_generated_tenant(root, end_date=date(2025, 11, 5), days=3, accounts=12)
    return root


@pytest.fixture(scope="module")
def uninterrupted(stocked, tmp_path_factory) -> dict[str, list[tuple]]:
    """Every public table after the backfill ran without interruption, from the warehouse and
    from the published layer."""
    root = tmp_path_factory.mktemp("uninterrupted")
    shutil.copytree(stocked, root, dirs_exist_ok=True)
    finished = Command(root, "backfill", "--start", DAYS[0], "--end", DAYS[1]).wait()
    assert finished.returncode == 0, finished.stderr
    return public_tables(root)


def kill_inside_a_step(command: Command, root: Path) -> None:
    """Inside the daily step of the range (every day's daily assets), once it has written a day."""
    wait_inside_the_daily_step(command, root)
    command.kill()


def wait_inside_the_daily_step(command: Command, root: Path) -> None:
    """Return half a second after the daily step of the range started: inside its first day."""
    deadline = time.monotonic() + COMMAND_TIMEOUT
    # the command creates the instance's SQLite storage first, then opens the warehouse: reading
    # the instance before could race that creation (both would create the tables)
    while not (root / "warehouse.duckdb").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    instance = dagster_instance()
    while time.monotonic() < deadline:
        for record in instance.get_run_records(dg.RunsFilter(job_name="daily_pipeline")):
            starts = instance.get_records_for_run(
                record.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_START
            ).records
            if any(start.event_log_entry.step_key == "daily_assets" for start in starts):
                time.sleep(0.5)
                return
        time.sleep(0.02)
    raise AssertionError(f"the daily step never started:\n{command.text()}")


def kill_between_runs(command: Command, root: Path) -> None:
    """As soon as the daily run of the range is done, before or as the health run starts."""
    command.wait_for_line("the daily assets of")
    command.kill()


def kill_at_the_final_checkpoint(command: Command, root: Path) -> None:
    """After the runs, while the command closes the warehouse (its final checkpoint)."""
    command.wait_for_line("[3/3]")
    command.kill()


def kill_after_half_the_run(command: Command, root: Path) -> None:
    """At a moment of no particular meaning: four seconds in."""
    time.sleep(4)
    command.kill()


@pytest.mark.parametrize(
    "kill", [kill_inside_a_step, kill_between_runs, kill_at_the_final_checkpoint, kill_after_half_the_run]
)
def test_a_backfill_killed_at_any_point_is_completed_by_the_next_command(
    kill, stocked, uninterrupted, tmp_path, commands, monkeypatch
):
    shutil.copytree(stocked, tmp_path, dirs_exist_ok=True)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    backfill = ("backfill", "--start", DAYS[0], "--end", DAYS[1])
    killed = Command(tmp_path, *backfill)
    commands.append(killed)
    kill(killed, tmp_path)

    again = Command(tmp_path, *backfill)
    commands.append(again)
    finished = again.wait()

    assert finished.returncode == 0, finished.stdout
    assert public_tables(tmp_path) == uninterrupted
    instance = dagster_instance()
    unfinished = instance.get_run_records(dg.RunsFilter(statuses=runs.UNFINISHED))
    assert unfinished == [], "a run is still marked unfinished"
    assert instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots == []
    failed_by_the_kill = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.FAILURE]))
    if failed_by_the_kill:
        # the run the kill cut short is reported by the next command, in one line before any work
        [(at, line)] = [(at, line) for at, line in again.lines if line.startswith("cs-pipeline: marked")]
        assert f"marked {len(failed_by_the_kill)} run(s)" in line
        assert failed_by_the_kill[0].dagster_run.run_id[:8] in line
        assert at < 30, f"the next command reported the dead run only after {at:.0f} s"


# the signals sent to the process (as `kill PID` does). Two are delivered together: sent while the
# process is stopped (SIGSTOP), they are both pending when it continues and arrive one after the
# other (in either order), before the first one's clean stop can end the command. (Two of the
# same signal would make one: a signal arriving while the same one is pending is lost.)
STOPS = {
    "SIGTERM": (signal.SIGTERM,),
    "SIGINT": (signal.SIGINT,),
    "SIGINT and SIGTERM together": (signal.SIGINT, signal.SIGTERM),
}


def send_together(pid: int, signals: tuple[signal.Signals, ...]) -> None:
    """`signals` delivered to process `pid` one right after the other."""
    if len(signals) == 1:
        os.kill(pid, signals[0])
        return
    os.kill(pid, signal.SIGSTOP)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert time.monotonic() < deadline, f"process {pid} did not stop"
        time.sleep(0.01)
    for signum in signals:
        os.kill(pid, signum)
    os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("stop", STOPS)
def test_a_backfill_signalled_inside_a_day_stops_within_seconds_and_the_next_command_completes_it(
    stop, stocked, uninterrupted, tmp_path, commands, monkeypatch
):
    signals = STOPS[stop]
    shutil.copytree(stocked, tmp_path, dirs_exist_ok=True)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    backfill = ("backfill", "--start", DAYS[0], "--end", DAYS[1])
    stopped = Command(tmp_path, *backfill)
    commands.append(stopped)
    wait_inside_the_daily_step(stopped, tmp_path)
    signalled = time.monotonic()
    send_together(stopped.process.pid, signals)
    try:
        stopped.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running 20 s after {stop}:\n{stopped.text()}")
    took = time.monotonic() - signalled
    output = stopped.wait()
    # the signal the process took first (two together may arrive in either order)
    [stop_signal] = [s for s in signals if f"cs-pipeline: stopped by {s.name} " in output.stderr]

    assert output.returncode == 128 + stop_signal, output.stdout
    assert "Traceback" not in output.stderr
    [said] = [line for line in output.stderr.splitlines() if line.startswith("cs-pipeline: stopped by")]
    assert said.startswith(f"cs-pipeline: stopped by {stop_signal.name}")
    assert "the same command again" in said
    instance = dagster_instance()
    [daily] = [record.dagster_run for record in instance.get_run_records(dg.RunsFilter(job_name="daily_pipeline"))]
    assert daily.status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_records(dg.RunsFilter(statuses=runs.UNFINISHED)) == []
    assert instance.get_run_records(dg.RunsFilter(job_name="health_pipeline")) == [], "a run started after the stop"
    concurrency = instance.event_log_storage.get_concurrency_info("duckdb")
    assert (concurrency.claimed_slots, concurrency.pending_steps) == ([], [])
    if len(signals) == 1:
        # a clean stop: the step failed naming the signal and the day it was at, not retried
        [failure] = [
            event.dagster_event.step_failure_data.error.message
            for event in instance.all_logs(daily.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
        ]
        assert f"Failure: stopped by {stop_signal.name} at 2025-11-0" in failure
        assert f"during the daily assets of {DAYS[0]}..{DAYS[1]} at 2025-11-0" in said
    else:
        [second] = [s for s in signals if s != stop_signal]
        assert f"a second {second.name}" in said
    print(f"{stop}: ended {took:.2f} s after the signal")

    again = Command(tmp_path, *backfill)
    commands.append(again)
    finished = again.wait()
    assert finished.returncode == 0, finished.stdout
    assert public_tables(tmp_path) == uninterrupted


@contextmanager
def warehouse_held_by_an_analyst(warehouse: Path) -> Iterator[subprocess.Popen]:
    """Another process holding the warehouse file open read-only, as a notebook would, until
    the block ends."""
    duckdb.connect(str(warehouse)).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=True); "
         "print('holding', flush=True); time.sleep(120)", str(warehouse)],
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "holding"
        yield holder
    finally:
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)


def test_a_run_whose_warehouse_another_process_holds_fails_naming_it_within_the_time(stocked, tmp_path, commands):
    shutil.copytree(stocked, tmp_path, dirs_exist_ok=True)
    config = tmp_path / "cs_pipeline.yaml"
    config.write_text(config.read_text() + "timeouts: {warehouse_lock_seconds: 3}\n")
    with warehouse_held_by_an_analyst(tmp_path / "warehouse.duckdb") as holder:
        command = Command(tmp_path, "materialize", "--date", "2025-11-03")
        commands.append(command)
        finished = command.wait()

    assert finished.returncode == 1
    [error] = [line for line in finished.stderr.splitlines() if "stayed locked" in line]
    assert f"PID {holder.pid}" in error
    assert "timeouts.warehouse_lock_seconds = 3" in error
    assert str(tmp_path / "published" / "analytics.duckdb") in error
    assert any(line.startswith("cs-pipeline: waiting for the warehouse") for line in finished.stderr.splitlines())
    assert "Traceback" not in finished.stderr
    elapsed = max(at for at, _ in command.lines)
    assert elapsed < 60, f"gave up only after {elapsed:.0f} s"


def test_a_step_whose_warehouse_another_process_holds_fails_with_the_holder_in_its_error(stocked, tmp_path):
    """The same wait inside a step, as in runs launched from the UI or the daemon (no CLI)."""
    from cs_pipeline.assets_common.jobs import DAILY_JOB
    from cs_pipeline.config import load_config
    from cs_pipeline.definitions import build_definitions

    shutil.copytree(stocked, tmp_path, dirs_exist_ok=True)
    config_path = tmp_path / "cs_pipeline.yaml"
    config_path.write_text(config_path.read_text() + "timeouts: {warehouse_lock_seconds: 2}\n")
    job = build_definitions(load_config(config_path)).resolve_job_def(DAILY_JOB)
    with warehouse_held_by_an_analyst(tmp_path / "warehouse.duckdb") as holder, dg.instance_for_test() as instance:
        # usage_events alone: crm_snapshot's retry policy would try again after 30 s and 60 s
        result = job.execute_in_process(
            partition_key="2025-11-03",
            instance=instance,
            raise_on_error=False,
            asset_selection=[dg.AssetKey("usage_events")],
        )

    assert not result.success
    [failure] = [event for event in result.all_events if event.event_type_value == "STEP_FAILURE"]
    message = failure.step_failure_data.error.message
    assert f"PID {holder.pid}" in message and "analytics.duckdb" in message


def fake_run(instance: dg.DagsterInstance, pid: int, host: str) -> dg.DagsterRun:
    """A STARTED run of another process (`pid` on `host`), as its first engine event records it."""
    run = instance.add_run(
        dg.DagsterRun(job_name="daily_pipeline", status=dg.DagsterRunStatus.STARTED, tags={runs.HOST_TAG: host})
    )
    instance.report_engine_event(f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid))
    return run


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)


def test_a_slot_held_by_a_live_run_makes_the_command_wait_and_fail_naming_it_then_a_dead_one_is_freed(
    stocked, tmp_path, commands, monkeypatch
):
    shutil.copytree(stocked, tmp_path, dirs_exist_ok=True)
    config = tmp_path / "cs_pipeline.yaml"
    config.write_text(config.read_text() + "timeouts: {pool_seconds: 3}\n")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    alive = sleeper()
    try:
        instance = dagster_instance()
        holder = fake_run(instance, alive.pid, runs.this_host())
        instance.event_log_storage.initialize_concurrency_limit_to_default("duckdb")
        assert instance.event_log_storage.claim_concurrency_slot("duckdb", holder.run_id, "usage_events").is_claimed

        waited = Command(tmp_path, "materialize", "--date", "2025-11-03")
        commands.append(waited)
        first = waited.wait()
        assert first.returncode == 1
        assert any(line.startswith("cs-pipeline: waiting for the duckdb pool") for line in first.stderr.splitlines())
        [error] = [line for line in first.stderr.splitlines() if "stayed full" in line]
        assert holder.run_id[:8] in error and f"pid {alive.pid}" in error and "pool_seconds = 3" in error
    finally:
        os.killpg(alive.pid, signal.SIGKILL)
        alive.wait(timeout=30)

    # its process gone, the holder is failed and its slot freed by the next command
    again = Command(tmp_path, "materialize", "--date", "2025-11-03")
    commands.append(again)
    second = again.wait()
    assert second.returncode == 0, second.stdout
    assert "marked 1 run(s) left unfinished by a process that is gone as failed" in second.stdout
    assert instance.get_run_by_id(holder.run_id).status == dg.DagsterRunStatus.FAILURE


def test_run_monitoring_fails_a_run_whose_worker_is_gone_and_only_that_one(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    instance = dagster_instance()  # the embedded instance: MonitoredRunLauncher, run monitoring on
    assert isinstance(instance.run_launcher, runs.MonitoredRunLauncher) and instance.run_monitoring_enabled
    alive, dead = sleeper(), sleeper()
    try:
        os.killpg(dead.pid, signal.SIGKILL)
        dead.wait(timeout=30)
        living = fake_run(instance, alive.pid, runs.this_host())
        gone = fake_run(instance, dead.pid, runs.this_host())
        elsewhere = fake_run(instance, dead.pid, "another-host")
        for run in (living, gone, elsewhere):
            [record] = instance.get_run_records(dg.RunsFilter(run_ids=[run.run_id]))
            monitor_started_run(instance, None, record, logging.getLogger("test"))
        statuses = {run.run_id: instance.get_run_by_id(run.run_id).status for run in (living, gone, elsewhere)}
    finally:
        os.killpg(alive.pid, signal.SIGKILL)
        alive.wait(timeout=30)

    assert statuses == {
        living.run_id: dg.DagsterRunStatus.STARTED,
        gone.run_id: dg.DagsterRunStatus.FAILURE,
        elsewhere.run_id: dg.DagsterRunStatus.STARTED,  # another host's pid cannot be checked here
    }


def test_a_pid_reused_by_a_newer_process_counts_as_gone():
    worker = runs.Worker(pid=os.getpid(), host=runs.this_host(), seen_at=time.time())
    assert not worker.is_gone()
    # recorded before this process started: the pid now names another process
    assert runs.Worker(pid=os.getpid(), host=runs.this_host(), seen_at=0.0).is_gone()


def test_a_run_created_by_a_process_killed_before_it_started_is_failed_by_the_next_command(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    instance = dagster_instance()
    dead, alive = sleeper(), sleeper()
    try:
        os.killpg(dead.pid, signal.SIGKILL)
        dead.wait(timeout=30)
        # created by a cs-pipeline process (its pid tag), no engine event with a pid yet
        orphan, waiting = (
            instance.add_run(
                dg.DagsterRun(
                    job_name="daily_pipeline",
                    status=dg.DagsterRunStatus.NOT_STARTED,
                    tags={runs.HOST_TAG: runs.this_host(), runs.PID_TAG: str(process.pid)},
                )
            )
            for process in (dead, alive)
        )
        failed = runs.fail_runs_of_gone_processes(instance)
    finally:
        os.killpg(alive.pid, signal.SIGKILL)
        alive.wait(timeout=30)

    assert [entry.run.run_id for entry in failed] == [orphan.run_id]
    assert instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.FAILURE
    assert instance.get_run_by_id(waiting.run_id).status == dg.DagsterRunStatus.NOT_STARTED
