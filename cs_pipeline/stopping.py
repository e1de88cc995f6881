"""Stopping on SIGTERM or SIGINT (`kill`, `systemctl stop`, a container's stop, Ctrl-C, Terminate
in the Dagster UI): within seconds, the warehouse consistent, the run marked failed (or canceled)
and saying at which partition it stopped.

What belongs here: the process's stop request and what sets it (a step's signal handlers,
`stoppable_step`; the CLI's, `signals_stop_the_command`), and the message that says where a
command stopped. What does not: cancelling DuckDB's statements (warehouse.interrupt_queries),
failing a run and freeing its pool claims (runs.py).

Why: Dagster's handler raises its interrupt inside the Python code of a step, and inside a
DuckDB statement DuckDB turns that into a RuntimeError: the daily step's retry policy ran the
step again and a backfill went on to its end. A range step lasts its whole range (many minutes
for a month at scale); until now only SIGKILL ended it, recoverably but after a grace period.

How: while a range step runs (`stoppable_step`), SIGINT and SIGTERM set the stop request and
cancel the statements running (`connection.interrupt()`); the statement raises, its transaction
rolls back (every asset writes a partition in one), and the step fails with a dg.Failure naming
the signal and the partition, never retried. Between two works of a day the request is checked
too, for work in Python or Polars. A run worker under `dagster dev` gets Terminate as SIGINT
(Dagster's interrupt of its main thread): the same. The CLI (`signals_stop_the_command`) also
stops outside steps (its handler raises Stopped), and a thread sees every signal through
Python's wakeup fd whatever handler Dagster has installed meanwhile: a second signal, or
GRACE_SECONDS after the first, ends the process at once, its run marked failed and its pool
claims freed, recoverable as after SIGKILL.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg

from cs_pipeline import runs
from cs_pipeline.warehouse import interrupt_queries

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How long the CLI lets a stop end cleanly before it ends the process at once. A stop
# takes about a second: the running statement is cancelled, its transaction rolled back.
GRACE_SECONDS = 20.0


@dataclass
class _Request:
    """The process's stop request, and where the CLI was when it came."""

    signum: int | None = None
    run: tuple[dg.DagsterInstance, str, str] | None = None  # the CLI's run: instance, run id, what it does
    at: str | None = None  # the partition (and work) a step stopped at
    raised: bool = False  # Stopped was raised in the CLI's main thread: it stops, later signals only count


_REQUEST = _Request()


def requested() -> int | None:
    """The signal that asked this process to stop, if one did."""
    return _REQUEST.signum


def request(signum: int) -> None:
    """Ask this process to stop (the first signal counts) and cancel the statements running."""
    if _REQUEST.signum is None:
        _REQUEST.signum = signum
    interrupt_queries()


def exit_status(signum: int) -> int:
    """A process stopped by a signal exits 128 + its number: 130 for SIGINT, 143 for SIGTERM."""
    return 128 + signum


class Stopped(BaseException):
    """The CLI's own code stops on a signal (a BaseException, as KeyboardInterrupt: no `except
    Exception` may swallow it)."""


class _StepStopped(Exception):
    """A step found the stop request between two works."""


class StepProgress:
    """Where a stoppable step is, for the failure that says where it stopped."""

    def __init__(self) -> None:
        self.at = "its start"

    def reached(self, at: str) -> None:
        """The step begins `at` (a partition and its work); stop here when a signal asked to."""
        self.at = at
        if _REQUEST.signum is not None:
            raise _StepStopped


@contextmanager
def stoppable_step() -> Iterator[StepProgress]:
    """For the block (a step's work), SIGINT and SIGTERM stop it: the statement running is
    cancelled and rolls back, and the step fails with a dg.Failure that names the signal and
    where the step was, not retried. Off the main thread (no signal handlers there), only
    the CLI's own signals stop the block."""
    progress = StepProgress()
    on_main_thread = threading.current_thread() is threading.main_thread()
    earlier = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} if on_main_thread else {}
    for signum in earlier:
        signal.signal(signum, lambda signum, _frame: request(signum))
    try:
        yield progress
    except (Exception, KeyboardInterrupt, dg.DagsterExecutionInterruptedError) as exc:
        if _REQUEST.signum is None:
            raise
        _REQUEST.at = progress.at
        between_works = isinstance(exc, _StepStopped)
        message = (
            f"stopped by {signal.Signals(_REQUEST.signum).name} at {progress.at}: "
            f"{'before its work' if between_works else 'its work was cancelled and its transaction rolled back'}; "
            "what the step committed before is kept, and running it again completes the rest"
        )
        raise dg.Failure(message, metadata={"stopped_at": progress.at}, allow_retries=False) from (
            None if between_works else exc
        )
    finally:
        for signum, handler in earlier.items():
            signal.signal(signum, handler)


@contextmanager
def executing(instance: dg.DagsterInstance, run_id: str, what: str) -> Iterator[None]:
    """The CLI executes run `run_id` (`what` it does) in the block: a stop names it, and a stop
    that cannot end cleanly fails it. A stop that ends the block before Dagster has ended the run
    (while Dagster creates it) marks it failed; on leaving, a stop requested meanwhile raises Stopped."""
    _REQUEST.run, _REQUEST.at = (instance, run_id, what), None
    try:
        yield
    except BaseException:
        if _REQUEST.signum is not None:
            runs.fail_run(instance, run_id, f"{what}: stopped by {signal.Signals(_REQUEST.signum).name}")
        raise
    if _REQUEST.signum is not None:
        _raise_stopped()
    _REQUEST.run = None


def _raise_stopped() -> None:
    _REQUEST.raised = True
    raise Stopped


def describe() -> str:
    """Where the command stopped, for its last line."""
    name = signal.Signals(_REQUEST.signum).name if _REQUEST.signum is not None else "a signal"
    if _REQUEST.run is None:
        return f"stopped by {name}; the same command again does what it had not done"
    instance, run_id, what = _REQUEST.run
    run = instance.get_run_by_id(run_id)
    status = run.status.value if run else "not created"
    at = f" at {_REQUEST.at}" if _REQUEST.at else ""
    return (
        f"stopped by {name} during {what}{at} (run {run_id[:8]}: {status}); the days it committed are kept, "
        "the same command again completes the rest"
    )


@contextmanager
def signals_stop_the_command() -> Iterator[None]:
    """For the block (a CLI command), SIGINT and SIGTERM stop it: in a step as `stoppable_step`
    says, elsewhere by raising Stopped in the main thread. A watcher thread sees every signal
    (Python's wakeup fd), whatever handler Dagster has installed meanwhile: the first requests
    the stop, a second one, or GRACE_SECONDS without the command ending, ends the process at once
    (`_end_at_once`). Off the main thread (a test calling the CLI's main), signals are left as they are."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)

    def stop(signum: int, _frame: object) -> None:
        request(signum)
        if not _REQUEST.raised:  # once stopping, the main thread is left to end (or the watcher ends it)
            _raise_stopped()

    earlier = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    earlier_wakeup = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    watcher = threading.Thread(target=_watch, args=(read_end,), name="stop watcher", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        for signum, handler in earlier.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(earlier_wakeup)
        os.write(write_end, b"\0")  # not a signal: the watcher ends
        watcher.join()
        os.close(read_end)
        os.close(write_end)


def _watch(read_end: int) -> None:
    """The stop watcher: the signal numbers the wakeup fd receives, 0 to end."""
    first_at = None
    while True:
        wait = None if first_at is None else max(0.0, first_at + GRACE_SECONDS - time.monotonic())
        if not select.select([read_end], [], [], wait)[0]:
            _end_at_once(f"not ended {GRACE_SECONDS:g} s after it")
        for signum in os.read(read_end, 64):
            if signum == 0:
                return
            if signum not in STOP_SIGNALS:
                continue
            if first_at is not None:
                _end_at_once(f"a second {signal.Signals(signum).name}")
            request(signum)
            first_at = time.monotonic()


def _end_at_once(why: str) -> None:
    """End the process now: its run marked failed and its pool claims freed first; the warehouse
    recovers on its next open, as after SIGKILL."""
    name = signal.Signals(_REQUEST.signum).name
    during = f" during {_REQUEST.run[2]}" if _REQUEST.run else ""
    message = f"stopped by {name}{during} ({why}): ended at once; the same command again completes the rest"
    if _REQUEST.run is None:
        print(f"cs-pipeline: {message}", file=sys.stderr, flush=True)
        os._exit(exit_status(_REQUEST.signum))
    instance, run_id, _what = _REQUEST.run
    runs.end_process(instance, run_id, message, exit_status(_REQUEST.signum))
