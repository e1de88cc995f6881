"""The fixtures every test folder shares: the process check of the whole run, and the
hand-made tenant a test runs the pipeline on.

The tenant fixtures form one family. `tenant_files` writes a tenant (support/tenant.py,
`write_tenant`) into the test's tmp_path and returns its config path; what it writes comes from
three fixtures a test module overrides to change it, by defining a fixture of the same name:
`tenant_config` (the config's text, or DEMO_CONFIG), `tenant_crm` (the CRM export, or None)
and `tenant_deliveries` (the landing zone). `tenant` is `tenant_files` with the embedded Dagster
instance of `dagster_home`, for tests that call `cs_pipeline.cli.main` in the test's process.
Tenants a whole module shares (scope="module": a tenant run once, a generated one) are written
by the module itself with `write_tenant` or `write_generated_tenant`."""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping
from pathlib import Path

import pytest

from cs_pipeline_tests.support.commands import Command
from cs_pipeline_tests.support.processes import STARTED_SESSIONS, running_processes
from cs_pipeline_tests.support.tenant import APPENDIX_CRM, APPENDIX_DELIVERIES, CONFIG, Crm, write_tenant

# Markers that make a test e2e too (pyproject.toml lists them all), and the fixture that does:
# a test that needs DAGSTER_HOME runs the pipeline through Dagster. So `pytest -m "not e2e"`
# stays fast when a test is added with only one of them.
IMPLY_E2E_MARKERS = ("postgres", "ui", "fuzz")
IMPLY_E2E_FIXTURES = ("dagster_home",)


@pytest.hookimpl(tryfirst=True)  # before `-m` selects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        implied = any(item.get_closest_marker(name) for name in IMPLY_E2E_MARKERS) or any(
            name in getattr(item, "fixturenames", ()) for name in IMPLY_E2E_FIXTURES
        )
        if implied and not item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.e2e)
    # The UI tests first: they mostly wait (for dagster dev, the daemon's 30-second ticks), so
    # under `make test`'s workers the others run meanwhile instead of after them (the Makefile's
    # --no-loadscope-reorder keeps this order; xdist would otherwise start with the largest files).
    items.sort(key=lambda item: item.get_closest_marker("ui") is None)


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


@pytest.fixture
def dagster_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DAGSTER_HOME set to `tmp_path / "dagster_home"` for the test: the embedded instance that
    `cs_pipeline.cli.main` and `DagsterInstance.get()` use in the test's process. A command run
    in a process of its own is given DAGSTER_HOME by the test instead."""
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


@pytest.fixture
def tenant_config() -> str:
    """The config `tenant_files` writes: CONFIG (the appendix tenant's: files CRM with csm_risk and
    segment attributes, partitions from 2025-11-01, one `default` profile). A module overrides it
    with another text, or with DEMO_CONFIG for the bundled demo config and its sql/."""
    return CONFIG


@pytest.fixture
def tenant_crm() -> Crm | None:
    """The CRM export `tenant_files` writes: the seed hierarchy's accounts, assets and contacts (support/tenant.py). A
    module overrides it with others, or with None to write the export itself as each day runs."""
    return APPENDIX_CRM


@pytest.fixture
def tenant_deliveries() -> Mapping[str, list[dict[str, str]]]:
    """The usage deliveries `tenant_files` writes (day -> rows of its `a.csv`): APPENDIX_DELIVERIES,
    the 20th and the 21st. A module overrides it with its own days."""
    return APPENDIX_DELIVERIES


@pytest.fixture
def tenant_files(tmp_path: Path, tenant_config: str, tenant_crm: Crm | None, tenant_deliveries) -> Path:
    """A hand-made tenant in tmp_path, as `tenant_config`, `tenant_crm` and `tenant_deliveries`
    say; its config path. Sets no DAGSTER_HOME: for tests that run commands in processes of their
    own, or that make their Dagster instance themselves."""
    return write_tenant(tmp_path, config=tenant_config, crm=tenant_crm, deliveries=tenant_deliveries)


@pytest.fixture
def tenant(tenant_files: Path, dagster_home: Path) -> Path:
    """`tenant_files` (its config path) with DAGSTER_HOME set by `dagster_home`: for tests that
    run `cs_pipeline.cli.main` in the test's process."""
    return tenant_files


@pytest.fixture
def commands() -> list[Command]:
    """The `cs-pipeline` commands a test starts (it appends them): each is killed at the test's
    end, whatever happened."""
    started: list[Command] = []
    yield started
    for command in started:
        if command.process.poll() is None:
            command.kill()
