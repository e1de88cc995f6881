"""The Dagster UI for real: `dagster dev` (webserver and daemon, as `make ui` starts it) on a
small generated tenant and an embedded instance; the code location through the GraphQL API
the UI uses, a run launched and executed through it, and a screenshot of the asset graph
taken with headless Chromium (`make test` installs the Debian package `chromium`, as root)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from cs_pipeline import runs
from cs_pipeline.assets_common.jobs import DAILY_JOB
from cs_pipeline.cli import EMBEDDED_INSTANCE_YAML, yesterday
from cs_pipeline.config import load_config
from cs_pipeline.definitions import build_definitions
from cs_pipeline_tests.support import REPO, processes
from cs_pipeline_tests.support.tenant import write_generated_tenant
from cs_pipeline_tests.support.warehouse import read_only

pytestmark = [pytest.mark.e2e, pytest.mark.ui]

DAY = "2025-11-20"
LOCATION = "cs_pipeline"
REPOSITORY = "__repository__"  # the repository Dagster makes of a module's Definitions
SCREEN = (2000, 1500)  # large enough for the whole graph (docs/screenshot.sh too)
CHROMIUMS = ("chromium", "chromium-browser", "google-chrome")
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


@dataclass
class Webserver:
    url: str
    log: Path

    def graphql(self, query: str, **variables) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            data=json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.load(response)
        assert not answer.get("errors"), f"GraphQL errors: {answer['errors']}"
        return answer["data"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@pytest.fixture(scope="module")
def tenant(tmp_path_factory) -> Path:
    return write_generated_tenant(tmp_path_factory.mktemp("tenant"), end_date=date.fromisoformat(DAY), days=1)


@pytest.fixture(scope="module")
def webserver(tenant, tmp_path_factory) -> Iterator[Webserver]:
    home = tmp_path_factory.mktemp("dagster_home")
    # the instance `cs-pipeline` creates on first use, without the UI's newsletter prompt
    (home / "dagster.yaml").write_text(EMBEDDED_INSTANCE_YAML + "nux:\n  enabled: false\n")
    log = home / "dagster-dev.log"
    port = _free_port()
    env = {**os.environ, "CS_PIPELINE_CONFIG": str(tenant), "DAGSTER_HOME": str(home)}
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"),
               "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    server = Webserver(f"http://127.0.0.1:{port}", log)
    # stopped with all its processes (webserver, daemon, code server, run workers) at the end
    with (
        log.open("wb") as output,
        processes.started(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT) as process,
    ):
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"dagster dev exited with {process.returncode}:\n{_tail(log)}")
            if time.monotonic() > deadline:
                pytest.fail(f"dagster dev did not answer on {server.url}/server_info in 120 s:\n{_tail(log)}")
            try:
                with urllib.request.urlopen(f"{server.url}/server_info", timeout=5) as response:
                    info = json.load(response)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        assert info["dagster_webserver_version"] == info["dagster_version"]
        # the code location loads in its own server: wait for it
        while True:
            entries = server.graphql(
                "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
                "locationOrLoadError { __typename ... on PythonError { message } } } } } }"
            )["workspaceOrError"]["locationEntries"]
            entry = next(entry for entry in entries if entry["name"] == LOCATION)
            if entry["loadStatus"] == "LOADED":
                break
            if time.monotonic() > deadline:
                pytest.fail(f"code location {LOCATION} not loaded in 120 s: {entry}\n{_tail(log)}")
            time.sleep(0.5)
        assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
        yield server


ASSET_NODES = """{
  assetNodes {
    assetKey { path }
    repository { name location { name } }
    jobNames
    pools
    partitionDefinition { type dimensionTypes { name type } }
    partitionKeysByDimension { name partitionKeys }
  }
}"""


def test_every_asset_of_the_code_location_is_served(webserver, tenant):
    config = load_config(tenant)
    expected = {key.to_user_string() for key in build_definitions(config).resolve_all_asset_keys()}
    nodes = {"/".join(node["assetKey"]["path"]): node for node in webserver.graphql(ASSET_NODES)["assetNodes"]}
    assert set(nodes) == expected
    assert {(node["repository"]["location"]["name"], node["repository"]["name"]) for node in nodes.values()} == {
        (LOCATION, REPOSITORY)
    }
    # every asset writes the warehouse: every one is in the duckdb pool
    assert all(node["pools"] == ["duckdb"] for node in nodes.values())

    health = nodes["account_health"]
    assert "health_pipeline" in health["jobNames"]
    assert health["partitionDefinition"]["type"] == "MULTIPARTITIONED"
    assert {(d["name"], d["type"]) for d in health["partitionDefinition"]["dimensionTypes"]} == {
        ("date", "TIME_WINDOW"),
        ("profile", "STATIC"),
    }
    keys = {d["name"]: d["partitionKeys"] for d in health["partitionKeysByDimension"]}
    assert keys["profile"] == config.profile_names() == ["onboarding", "high_touch", "digital", "default"]
    assert (keys["date"][0], keys["date"][-1]) == (config.start_date.isoformat(), yesterday().isoformat())

    daily = nodes["account_metrics"]
    assert DAILY_JOB in daily["jobNames"]
    assert daily["partitionDefinition"]["type"] == "TIME_WINDOW"
    assert [d["partitionKeys"] for d in daily["partitionKeysByDimension"]] == [keys["date"]]


LAUNCH = """mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
    ... on PipelineNotFoundError { message }
  }
}"""
RUN = """query ($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { status jobName tags { key value } assetMaterializations { assetKey { path } partition } }
  }
}"""
FAILURES = """query ($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection {
      events {
        __typename
        ... on MessageEvent { message stepKey level }
        ... on ExecutionStepFailureEvent { error { message causes { message } } }
        ... on RunFailureEvent { error { message } }
      }
    }
  }
}"""


def launch_the_daily_run(webserver: Webserver) -> str:
    """The daily job for DAY launched as the Launchpad launches it; its run id."""
    params = {
        "selector": {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY, "jobName": DAILY_JOB},
        "mode": "default",
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": DAY}]},
    }
    launched = webserver.graphql(LAUNCH, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


def test_a_run_launched_through_the_ui_succeeds(webserver, tenant):
    """The daily job for one day, as the Launchpad launches it: queued, dequeued by the daemon,
    executed by a run worker (its one step in the worker's process, in the duckdb pool)."""
    run_id = launch_the_daily_run(webserver)

    deadline = time.monotonic() + 240
    while (run := webserver.graphql(RUN, runId=run_id)["runOrError"])["status"] not in TERMINAL:
        if time.monotonic() > deadline:
            pytest.fail(f"run {run_id} still {run['status']} after 240 s:\n{_tail(webserver.log)}")
        time.sleep(1)
    if run["status"] != "SUCCESS":
        events = webserver.graphql(FAILURES, runId=run_id)["logsForRun"]["events"]
        errors = [
            f"{event.get('stepKey') or ''}: {event['message']} {event.get('error') or ''}"
            for event in events
            if event.get("level") == "ERROR" or event["__typename"].endswith("FailureEvent")
        ]
        pytest.fail(f"run {run_id} ended {run['status']}:\n" + "\n".join(errors))

    assert run["jobName"] == DAILY_JOB
    assert {"key": "dagster/partition", "value": DAY} in run["tags"]
    # the launcher tagged it with this host, so run monitoring can tell when its worker is gone
    assert {"key": runs.HOST_TAG, "value": runs.this_host()} in run["tags"]
    materialized = {("/".join(m["assetKey"]["path"]), m["partition"]) for m in run["assetMaterializations"]}
    assert materialized == {
        (asset, DAY)
        for asset in (
            "crm_snapshot", "usage_events", "accounts", "users", "account_metrics", "account_rollups",
            "status_history", "retention",
        )  # fmt: skip
    }
    with read_only(tenant) as con:
        accounts = con.execute("SELECT count(*) FROM accounts").fetchone()[0]
        metrics = con.execute("SELECT count(*) FROM account_metrics WHERE date = ?", [DAY]).fetchone()[0]
    assert accounts > 0 and metrics >= accounts


TERMINATE = """mutation ($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunFailure { message }
    ... on PythonError { message }
  }
}"""
STEP_STARTED = """query ($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection { events { __typename ... on ExecutionStepStartEvent { stepKey } } }
  }
}"""


# A custom metric whose query runs for hours unless cancelled: the daily step cannot end before
# Terminate reaches it, however fast the machine or slow the signal
ENDLESS_METRIC = "SELECT 'none' AS account_id, sum(hash(range))::DOUBLE AS value FROM range(10000000000000)\n"


def test_terminate_in_the_ui_stops_a_running_range_step_within_seconds(webserver, tenant):
    """Terminate (GraphQL terminateRun: Dagster sends SIGINT to the run worker) while the daily
    step works on its day: the run is canceled within seconds, its step failing at that day."""
    metric = tenant.parent / "sql" / "metrics" / "escalations.sql"
    kept = metric.read_text()
    metric.write_text(ENDLESS_METRIC)  # read when the step computes the metrics, not when the code loads
    try:
        run_id = launch_the_daily_run(webserver)
        deadline = time.monotonic() + 240
        while not any(
            event.get("stepKey") == "daily_assets"
            for event in webserver.graphql(STEP_STARTED, runId=run_id)["logsForRun"]["events"]
        ):
            assert time.monotonic() < deadline, f"the daily step never started:\n{_tail(webserver.log)}"
            time.sleep(0.1)
        time.sleep(0.5)

        terminated = time.monotonic()
        answer = webserver.graphql(TERMINATE, runId=run_id)["terminateRun"]
        assert answer["__typename"] == "TerminateRunSuccess", answer
        while (run := webserver.graphql(RUN, runId=run_id)["runOrError"])["status"] not in TERMINAL:
            assert time.monotonic() - terminated < 30, f"run {run_id} still {run['status']} 30 s after Terminate"
            time.sleep(0.2)
        took = time.monotonic() - terminated
    finally:
        metric.write_text(kept)

    assert run["status"] == "CANCELED"
    events = webserver.graphql(FAILURES, runId=run_id)["logsForRun"]["events"]
    [failure] = [event for event in events if event["__typename"] == "ExecutionStepFailureEvent"]
    assert f"stopped by SIGINT at {DAY}" in failure["error"]["message"]
    print(f"Terminate: the run ended {took:.2f} s after it")


def _chromium() -> str:
    for name in CHROMIUMS:
        if path := shutil.which(name):
            return path
    pytest.fail("no Chromium to take the UI's screenshot with: apt-get install chromium (`make test` does, as root)")


def _headless(args: list[str], profile: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    """Headless Chromium on a throwaway profile; all its processes go when it is done."""
    command = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", f"--window-size={SCREEN[0]},{SCREEN[1]}", "--virtual-time-budget=15000", *args,
    ]  # fmt: skip
    return processes.run(command, timeout=timeout)


def asset_graph_url(base: str, groups: list[str]) -> str:
    """The global asset lineage, every group expanded (the UI folds groups by default)."""
    expanded = ",".join(f"global@global:{group}" for group in sorted(groups))
    return f"{base}/asset-groups?{urllib.parse.urlencode({'expanded': expanded})}"


def read_png(path: Path) -> np.ndarray:
    """The pixels (height x width x channels) of an 8-bit RGB or RGBA, non-interlaced PNG."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    position, compressed = 8, bytearray()
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            compressed += body
        position += 12 + length
    assert (depth, colour, interlace) in ((8, 2, 0), (8, 6, 0)), (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    scanlines = np.frombuffer(zlib.decompress(compressed), np.uint8).reshape(height, 1 + width * channels)
    pixels = np.zeros((height, width * channels), np.uint8)
    above = np.zeros(width * channels, np.int64)
    for y in range(height):
        kind, line = scanlines[y, 0], scanlines[y, 1:].astype(np.int64)
        if kind == 0:
            row = line
        elif kind == 1:  # sub: a running sum along the row, per channel
            row = line.reshape(width, channels).cumsum(axis=0).reshape(-1) & 255
        elif kind == 2:  # up
            row = (line + above) & 255
        else:  # average, paeth: each byte needs the one decoded to its left
            values, up, row_list = line.tolist(), above.tolist(), [0] * len(line)
            for i, value in enumerate(values):
                left = row_list[i - channels] if i >= channels else 0
                if kind == 3:
                    predicted = (left + up[i]) // 2
                else:
                    corner = up[i - channels] if i >= channels else 0
                    p = left + up[i] - corner
                    pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
                    predicted = left if pa <= pb and pa <= pc else up[i] if pb <= pc else corner
                row_list[i] = (value + predicted) & 255
            row = np.array(row_list, np.int64)
        pixels[y] = row
        above = row
    return pixels.reshape(height, width, channels)[:, :, :3]


def test_asset_graph_renders(webserver, tenant, tmp_path):
    assets = sorted(key.to_user_string() for key in build_definitions(load_config(tenant)).resolve_all_asset_keys())
    groups = [node["groupName"] for node in webserver.graphql("{ assetNodes { groupName } }")["assetNodes"]]
    url = asset_graph_url(webserver.url, sorted(set(groups)))

    # the page the browser ends up with names every asset (the graph, not a loading spinner)
    dom = _headless(["--dump-dom", url], tmp_path / "profile-dom").stdout
    assert "Global asset lineage" in dom
    missing = [asset for asset in assets if f">{asset}<" not in dom]
    assert not missing, f"assets not drawn on {url}: {missing}"

    shot = tmp_path / "asset-graph.png"
    done = _headless([f"--screenshot={shot}", url], tmp_path / "profile-shot")
    assert shot.exists(), f"no screenshot: {done.stderr[-2000:]}"
    pixels = read_png(shot)
    assert pixels.shape == (SCREEN[1], SCREEN[0], 3)
    colours, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    # a real page: many colours, no single one covering (nearly) everything, and dark text
    assert len(colours) > 50, f"{len(colours)} colours"
    assert counts.max() / counts.sum() < 0.95, f"one colour covers {counts.max() / counts.sum():.0%}"
    assert (pixels.max(axis=2) < 80).sum() > 2_000, "no dark (text) pixels"
