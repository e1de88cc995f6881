"""Benchmark and check: a backfill of N days of every asset launched from the UI, as a data
engineer launches one, on the demo tenant.

Generates the demo tenant (60 accounts, `--days` days ending yesterday, partitions starting on
its first day) in a work folder, starts `dagster dev` (webserver and daemon, as `make ui` does)
on an embedded instance there, launches through the UI's GraphQL API (`launchPartitionBackfill`
with `partitionsByAssets`: the daily assets over the days, account_health over the days x
every profile, subaccount_health over the days) a backfill of every asset, waits for it to end
(at most `--timeout` seconds), stops `dagster dev`, and checks that the backfill and each of
its runs succeeded and that every asset's partitions are materialised. Prints one line of JSON:
days, runs, elapsed seconds (launch to end of the backfill) and the runs by job. Exits 1, with
the reason and the end of dagster dev's log, when anything is not so.

`dagster dev` runs in a process group of its own, stopped (SIGTERM, then SIGKILL) with every
process it started however this script ends; it stays in this script's session, so a caller
that stops the session stops it too.

Usage: python bench/ui_backfill.py [--days N] [--accounts N] [--timeout SECONDS] [--workdir DIR]
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LOCATION = "cs_pipeline"
DAILY_ASSETS = (
    "crm_snapshot", "usage_events", "accounts", "users", "status_history", "account_metrics", "account_rollups",
    "retention",
)  # fmt: skip
ENDED = {"COMPLETED", "COMPLETED_SUCCESS", "COMPLETED_FAILED", "FAILED", "CANCELED"}
NO_NEWSLETTER = "nux:\n  enabled: false\n"

LAUNCH = """mutation ($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on InvalidSubsetError { message }
    ... on UnauthorizedError { message }
  }
}"""
BACKFILL = """query ($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill { status error { message } }
    ... on PythonError { message }
  }
}"""
RUNS = """query ($id: String!) {
  runsOrError(filter: {tags: [{key: "dagster/backfill", value: $id}]}) {
    ... on Runs { results { runId jobName status tags { key value } } }
  }
}"""


class BackfillFailed(Exception):
    """The backfill did not succeed: why."""


def graphql(url: str, query: str, **variables) -> dict:
    """The data of a GraphQL request to the webserver at `url`; GraphQL errors raise."""
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.load(response)
    if answer.get("errors"):
        raise BackfillFailed(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


def write_tenant(root: Path, days: int, accounts: int) -> tuple[Path, date, date]:
    """The demo tenant's data and config in `root`, its days ending yesterday; (config, first day, last day)."""
    from cs_pipeline.demo.generator import generate_tenant

    last = datetime.now(timezone.utc).date() - timedelta(days=1)
    first = last - timedelta(days=days - 1)
    generate_tenant(root, end_date=last, days=days, accounts=accounts, progress=None)
    shutil.copytree(REPO / "demo" / "sql", root / "sql", dirs_exist_ok=True)
    config = root / "cs_pipeline.yaml"
    config.write_text((REPO / "demo" / "cs_pipeline.yaml").read_text() + f'start_date: "{first.isoformat()}"\n')
    return config, first, last


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def dagster_dev(config: Path, home: Path, log: Path) -> Iterator[str]:
    """`dagster dev` on the instance in `home` serving `config`'s code location, until the block
    ends; yields its URL once the code location is loaded (at most 120 s)."""
    from cs_pipeline.cli import EMBEDDED_INSTANCE_YAML

    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(EMBEDDED_INSTANCE_YAML + NO_NEWSLETTER)
    port = free_port()
    env = {**os.environ, "CS_PIPELINE_CONFIG": str(config), "DAGSTER_HOME": str(home)}
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"),
               "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT, process_group=0)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_loaded(url, process, deadline=time.monotonic() + 120)
        yield url
    finally:
        stop_group(process)


def wait_until_loaded(url: str, process: subprocess.Popen, deadline: float) -> None:
    """Return once the webserver answers and the code location is loaded."""
    query = "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
    while True:
        if process.poll() is not None:
            raise BackfillFailed(f"dagster dev exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise BackfillFailed(f"dagster dev did not load the code location {LOCATION} in 120 s")
        try:
            entries = graphql(url, query)["workspaceOrError"]["locationEntries"]
            if any(entry["name"] == LOCATION and entry["loadStatus"] == "LOADED" for entry in entries):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)


def stop_group(process: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM to the process group of `process`, then SIGKILL to what is left after `grace` s."""
    for stop_signal, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, stop_signal)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            process.poll()
            try:
                os.killpg(process.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)


def backfill_params(first: date, last: date, profiles: list[str]) -> dict:
    """Every asset over first..last: a range per asset (account_health: the days x every profile)."""
    days = {"start": first.isoformat(), "end": last.isoformat()}
    health = {"start": f"{first.isoformat()}|{profiles[0]}", "end": f"{last.isoformat()}|{profiles[-1]}"}
    ranges = {**{asset: days for asset in DAILY_ASSETS}, "account_health": health, "subaccount_health": days}
    return {
        "partitionsByAssets": [
            {"assetKey": {"path": [asset]}, "partitions": {"range": selection}} for asset, selection in ranges.items()
        ],
        "title": f"every asset, {first}..{last}",
    }


def run_backfill(url: str, params: dict, timeout: float) -> tuple[str, float]:
    """Launch the backfill and wait for its end; (backfill id, seconds from launch to end)."""
    started = time.monotonic()
    launched = graphql(url, LAUNCH, params=params)["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise BackfillFailed(f"the backfill was not launched: {launched}")
    backfill_id = launched["backfillId"]
    while True:
        found = graphql(url, BACKFILL, id=backfill_id)["partitionBackfillOrError"]
        if found.get("status") in ENDED:
            break
        if time.monotonic() - started > timeout:
            raise BackfillFailed(f"backfill {backfill_id} did not end in {timeout:g} s (status {found.get('status')})")
        time.sleep(1)
    elapsed = time.monotonic() - started
    if found["status"] not in ("COMPLETED", "COMPLETED_SUCCESS"):
        raise BackfillFailed(f"backfill {backfill_id} ended {found['status']}: {found.get('error')}")
    return backfill_id, elapsed


def check_runs(url: str, backfill_id: str) -> Counter[str]:
    """The backfill's runs by job; every one must have succeeded."""
    runs = graphql(url, RUNS, id=backfill_id)["runsOrError"]["results"]
    failed = [f"{run['jobName']} {run['runId'][:8]}: {run['status']}" for run in runs if run["status"] != "SUCCESS"]
    if failed or not runs:
        raise BackfillFailed(f"runs of backfill {backfill_id} that did not succeed: {failed or 'no runs'}")
    return Counter(run["jobName"] for run in runs)


def check_materialized(home: Path, first: date, last: date, profiles: list[str]) -> None:
    """Every asset's partitions of first..last are materialised in the instance."""
    import dagster as dg

    days = {(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)}
    expected = {asset: days for asset in (*DAILY_ASSETS, "subaccount_health")}
    expected["account_health"] = {f"{day}|{profile}" for day in days for profile in profiles}
    os.environ["DAGSTER_HOME"] = str(home)  # the instance's storage paths name it
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for asset, partitions in expected.items():
            missing = partitions - instance.get_materialized_partitions(dg.AssetKey(asset))
            if missing:
                raise BackfillFailed(f"{asset}: partitions not materialised: {sorted(missing)}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 0 when the backfill and all its runs succeeded."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--accounts", type=int, default=60)
    parser.add_argument("--timeout", type=float, default=900, help="seconds the backfill may take")
    parser.add_argument("--workdir", type=Path, help="where the tenant and instance go (default: a temporary folder)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(REPO))
    from cs_pipeline.config import load_config

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="ui_backfill_"))
    shutil.rmtree(workdir, ignore_errors=True)
    config, first, last = write_tenant(workdir / "tenant", args.days, args.accounts)
    profiles = load_config(config).profile_names()
    home, log = workdir / "dagster_home", workdir / "dagster-dev.log"
    try:
        with dagster_dev(config, home, log) as url:
            backfill_id, elapsed = run_backfill(url, backfill_params(first, last, profiles), args.timeout)
            runs = check_runs(url, backfill_id)
        check_materialized(home, first, last, profiles)
    except BackfillFailed as exc:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:]) if log.exists() else ""
        print(f"ui_backfill: {exc}\n--- end of {log}:\n{tail}", file=sys.stderr)
        return 1
    print(json.dumps({"days": args.days, "accounts": args.accounts, "runs": sum(runs.values()),
                      "elapsed_seconds": round(elapsed, 1), "runs_by_job": dict(runs)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
