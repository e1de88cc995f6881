from __future__ import annotations

import os
import signal

import pytest

from cs_pipeline_tests.processes import STARTED_SESSIONS, running_processes


@pytest.fixture(scope="session", autouse=True)
def no_process_left_behind():
    """At the end of the run, no process a test started is still alive: a child of pytest, a
    descendant of one, or a member of a session `processes.started` made. Any found is killed,
    and the run fails, naming them."""
    yield
    processes = running_processes()
    children: dict[int, list[int]] = {}
    for entry in processes:
        children.setdefault(entry.parent, []).append(entry.pid)
    descendants, parents = set(), [os.getpid()]
    while parents:
        found = children.get(parents.pop(), [])
        descendants.update(found)
        parents.extend(found)
    left = [entry for entry in processes if entry.pid in descendants or entry.session in STARTED_SESSIONS]
    for entry in left:
        try:
            os.kill(entry.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if left:
        names = ", ".join(f"{entry.pid} {entry.command}" for entry in left)
        pytest.fail(f"processes left behind by the tests (now killed): {names}", pytrace=False)
