"""Runs whose process is gone, and the `duckdb` pool they hold.

What belongs here: telling whether the process that executes a run is still there (from the
pid Dagster records in the run's first engine event and the host tag cs_pipeline adds),
failing the runs of a process that is gone and freeing their pool slots, waiting for the
pool with a deadline, and the run launcher that lets Dagster's run monitoring see a dead run
worker. What does not: the warehouse file's own lock (warehouse.py).

Why: a run killed with SIGKILL, by the OOM killer or a reboot stays STARTED in the instance,
and its claim on the `duckdb` pool stays too, so every later step waits for a slot that
nobody will free. Dagster's run monitoring fails such runs only where the run launcher can
check its workers; the default launcher cannot, so MonitoredRunLauncher adds the check.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, LaunchRunContext, WorkerStatus

# The host whose process runs the run: a pid means something on that host only.
HOST_TAG = "cs_pipeline/host"
# The CLI's process, for a run it created but killed before Dagster recorded a pid
PID_TAG = "cs_pipeline/pid"
UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def this_host() -> str:
    """This machine's host name, as run tags record it."""
    return socket.gethostname()


@dataclass(frozen=True)
class Worker:
    """The process that executes a run, as its first engine event recorded it."""

    pid: int
    host: str | None
    seen_at: float  # when the event was stored: the process was running then

    def is_gone(self) -> bool:
        """True when this host has no such process any more. A pid on another host, or on an
        unknown one, cannot be checked from here: it counts as there."""
        if self.host != this_host():
            return False
        return not _running_since(self.pid, self.seen_at)

    def __str__(self) -> str:
        return f"pid {self.pid} on {self.host or 'an unknown host'}"


def run_worker(instance: dg.DagsterInstance, run: dg.DagsterRun) -> Worker | None:
    """The run's process: the in-process executor ("Executing steps in process (pid: N)") and
    a launched run worker ("Started process for run (pid: N)") record it in their run's first
    engine event that carries a pid; later ones are step subprocesses. Before that event, the
    CLI's pid tag (the process that created the run); else None."""
    records = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, ascending=True, limit=20
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.engine_event_data if event else None
        pid = data.metadata.get("pid") if data and data.metadata else None
        if pid is not None:
            return Worker(int(pid.value), run.tags.get(HOST_TAG), record.event_log_entry.timestamp)
    if PID_TAG in run.tags:
        created = instance.get_run_record_by_id(run.run_id)
        if created is not None:
            return Worker(int(run.tags[PID_TAG]), run.tags.get(HOST_TAG), created.create_timestamp.timestamp())
    return None


def _running_since(pid: int, seen_at: float) -> bool:
    """Is process `pid` alive, and the same process that was running at `seen_at` (not a
    newer one that reuses its pid)?"""
    stat = Path(f"/proc/{pid}/stat")
    if not Path("/proc/self/stat").exists():  # no procfs: existence is all we can tell
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        # the fields after the command name, which may itself hold spaces and parentheses
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    if fields[0] in ("Z", "X"):  # exited, not yet reaped
        return False
    started_ticks = int(fields[19])  # field 22 of proc(5): start time in clock ticks after boot
    boot_lines = Path("/proc/stat").read_text().splitlines()
    boot = next(int(line.split()[1]) for line in boot_lines if line.startswith("btime"))
    started_at = boot + started_ticks / os.sysconf("SC_CLK_TCK")
    return started_at <= seen_at + 1  # btime has a resolution of one second


@dataclass(frozen=True)
class FailedRun:
    """A run whose worker died, and that worker."""
    run: dg.DagsterRun
    worker: Worker

    def __str__(self) -> str:
        return f"{self.run.run_id[:8]} ({self.run.job_name} {describe_partition(self.run)}, {self.worker})"


def describe_partition(run: dg.DagsterRun) -> str:
    """The partition (or range) a run covers, for messages."""
    tags = run.tags
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start, end = tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")
    return f"{start}…{end}" if start else "unpartitioned"


def fail_runs_of_gone_processes(instance: dg.DagsterInstance) -> list[FailedRun]:
    """Mark failed every unfinished run of this instance whose process on this host is gone,
    then free the pool slots of every run that has ended (those included)."""
    failed = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: this_host()})):
        run = record.dagster_run
        worker = run_worker(instance, run)
        if worker is not None and worker.is_gone():
            instance.report_run_failed(run, f"Its process ({worker}) is gone: marked failed by cs_pipeline.")
            failed.append(FailedRun(run, worker))
    free_slots_of_ended_runs(instance)
    return failed


def free_slots_of_ended_runs(instance: dg.DagsterInstance) -> None:
    """Release the pool slots and pending claims of runs that have ended (or are unknown)."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    for run_id in storage.get_concurrency_run_ids():
        run = instance.get_run_by_id(run_id)
        if run is None or run.is_finished:
            storage.free_concurrency_slots_for_run(run_id)


class PoolTimeout(Exception):
    """The pool stayed full for longer than the configured time."""


def holders(instance: dg.DagsterInstance, pool: str) -> list[str]:
    """The runs holding slots of `pool`, described for a person."""
    described = []
    for run_id in sorted({slot.run_id for slot in instance.event_log_storage.get_concurrency_info(pool).claimed_slots}):
        run = instance.get_run_by_id(run_id)
        if run is None:
            described.append(f"run {run_id[:8]} (not in this instance)")
            continue
        worker = run_worker(instance, run)
        described.append(
            f"run {run_id[:8]} ({run.job_name} {describe_partition(run)}, {run.status.value}"
            f"{', ' + str(worker) if worker else ''})"
        )
    return described


def wait_for_pool(
    instance: dg.DagsterInstance, pool: str, *, timeout: float, say: Callable[[str], None], poll: float = 1.0
) -> None:
    """Return once `pool` has a free slot; say what it waits for, every 30 s; raise PoolTimeout
    after `timeout` seconds. Runs of gone processes are failed and their slots freed first."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return
    started = time.monotonic()
    said_at = None
    while True:
        fail_runs_of_gone_processes(instance)
        info = storage.get_concurrency_info(pool)
        if info.limit is None or len(info.claimed_slots) < info.limit:
            return
        waited = time.monotonic() - started
        held_by = "; ".join(holders(instance, pool))
        if waited >= timeout:
            raise PoolTimeout(
                f"the {pool} pool stayed full for {waited:.0f} s (timeouts.pool_seconds = {timeout:g}), held by "
                f"{held_by}; when that run is stuck, terminate it in the Dagster UI, which frees its slot"
            )
        if said_at is None or time.monotonic() - said_at >= 30:
            say(f"waiting for the {pool} pool (up to {timeout:g} s), held by {held_by}")
            said_at = time.monotonic()
        time.sleep(poll)


@contextmanager
def pool_watchdog(
    instance: dg.DagsterInstance, run_id: str, pool: str, *, timeout: float, what: str, poll: float = 1.0
) -> Iterator[None]:
    """While the block executes run `run_id` in this process, end the process with a clear
    error once one of its steps has waited `timeout` seconds for a slot of `pool` (another
    process took the slot after wait_for_pool found it free). Dagster's in-process executor
    waits for a slot without end, so the process exits (end_process)."""
    done = threading.Event()

    def watch() -> None:
        waiting_since = None
        while not done.wait(poll):
            pending = [
                step
                for step in instance.event_log_storage.get_concurrency_info(pool).pending_steps
                if step.run_id == run_id and step.assigned_timestamp is None
            ]
            if not pending:
                waiting_since = None
                continue
            waiting_since = waiting_since or time.monotonic()
            if time.monotonic() - waiting_since >= timeout:
                message = (
                    f"{what}: step {pending[0].step_key} waited {timeout:g} s for the {pool} pool "
                    f"(timeouts.pool_seconds), held by {'; '.join(holders(instance, pool)) or 'nobody now'}"
                )
                end_process(instance, run_id, message, 1)

    watcher = threading.Thread(target=watch, name=f"pool watchdog {run_id[:8]}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def end_process(instance: dg.DagsterInstance, run_id: str, message: str, status: int) -> None:
    """End this process at once (os._exit, from any thread), when the run it executes cannot end
    by itself: the run first marked failed with `message` unless it has ended, its pool claims
    freed, `message` said on stderr. The warehouse recovers on its next open, as after SIGKILL."""
    fail_run(instance, run_id, message)
    print(f"cs-pipeline: {message}", file=sys.stderr, flush=True)
    os._exit(status)


def fail_run(instance: dg.DagsterInstance, run_id: str, message: str) -> None:
    """Mark run `run_id` failed with `message` unless it has ended (or was never created), and
    free its pool claims."""
    run = instance.get_run_by_id(run_id)
    if run is not None and not run.is_finished:
        instance.report_run_failed(run, message)
    instance.event_log_storage.free_concurrency_slots_for_run(run_id)


class MonitoredRunLauncher(DefaultRunLauncher):
    """Dagster's default run launcher (a run worker process per run, started by the code
    server), plus the worker health check that run monitoring needs to fail a run whose worker
    died: each launched run is tagged with this host, and its worker counts as failed when the
    process is gone. A worker on another host counts as running (nothing to check from here;
    run monitoring's max_runtime_seconds still applies)."""

    def launch_run(self, context: LaunchRunContext) -> None:
        """Launch the run, tagged with the host that runs it."""
        self._instance.add_run_tags(context.dagster_run.run_id, {HOST_TAG: this_host()})
        super().launch_run(context)

    @property
    def supports_check_run_worker_health(self) -> bool:
        """Yes: this launcher can tell a dead run worker."""
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        """Whether the run's worker process is alive."""
        instance = self._instance
        worker = run_worker(instance, instance.get_run_by_id(run.run_id) or run)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "no worker recorded yet")
        if worker.is_gone():
            return CheckRunHealthResult(WorkerStatus.FAILED, f"the run worker ({worker}) is gone")
        return CheckRunHealthResult(WorkerStatus.RUNNING, str(worker))
