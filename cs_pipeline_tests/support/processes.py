"""Processes the tests start. Each runs in a session of its own (`start_new_session`), and
when its test is done, passed or failed, everything left of that session is stopped:
SIGTERM, then SIGKILL after a grace period, every wait bounded. `conftest.py` checks at the
end of the run that none of them is left."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# The sessions `started` made (a session's id is its first process's pid), for conftest.py.
STARTED_SESSIONS: set[int] = set()


@contextmanager
def started(command: list[str], *, stop_grace: float = 10.0, **popen) -> Iterator[subprocess.Popen]:
    """`subprocess.Popen(command, **popen)` in a new session, stopped with its whole session on leaving."""
    process = subprocess.Popen(command, start_new_session=True, **popen)
    STARTED_SESSIONS.add(process.pid)
    try:
        yield process
    finally:
        stop_session(process, stop_grace)


def run(command: list[str], *, timeout: float, **popen) -> subprocess.CompletedProcess:
    """`subprocess.run(command, capture_output=True, text=True, timeout=timeout)`, except that a
    timeout fails the test and stops the command's descendants too, not only the command."""
    captured = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "errors": "replace"}
    with started(command, **captured, **popen) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{' '.join(command)} did not finish in {timeout:g} s")
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def stop_session(process: subprocess.Popen, grace: float) -> None:
    """SIGTERM to every live process of `process`'s session, SIGKILL to those left after `grace` s."""
    for stop_signal in (signal.SIGTERM, signal.SIGKILL):
        for pid in live_session_members(process.pid):
            try:
                os.kill(pid, stop_signal)
            except ProcessLookupError:
                pass  # gone meanwhile
        deadline = time.monotonic() + grace
        while True:
            process.poll()  # reap the first process: a zombie would count as alive to kill(pid, 0)
            if not live_session_members(process.pid):
                return
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
    left = live_session_members(process.pid)
    raise RuntimeError(f"processes {left} of {process.args} still alive {grace:g} s after SIGKILL")


def live_session_members(session: int) -> list[int]:
    """The pids of the processes of `session` that are not zombies (those are only waiting to be reaped)."""
    return [process.pid for process in running_processes() if process.session == session]


class ProcessEntry:
    """One line of `/proc/PID/stat`: what tells a process's parent, session and whether it runs."""

    def __init__(self, pid: int, stat: str) -> None:
        self.pid = pid
        # "PID (COMMAND) STATE PPID PGRP SESSION ...": COMMAND may hold spaces and parentheses
        self.command = stat[stat.index("(") + 1 : stat.rindex(")")]
        state, ppid, _, session = stat[stat.rindex(")") + 2 :].split()[:4]
        self.zombie = state in ("Z", "X")
        self.parent = int(ppid)
        self.session = int(session)


def running_processes() -> list[ProcessEntry]:
    """Every process of the machine but the zombies, from /proc."""
    entries = []
    for path in Path("/proc").iterdir():
        if not path.name.isdigit():
            continue
        try:
            entry = ProcessEntry(int(path.name), (path / "stat").read_text())
        except (FileNotFoundError, ProcessLookupError):
            continue  # ended while being listed
        if not entry.zombie:
            entries.append(entry)
    return entries
