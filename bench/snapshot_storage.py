"""Benchmark: what a day adds to the stored CRM history, and what the daily run costs.

Generates a tenant (default: 10,000 accounts, 20,000 events a day over 10 days D1..D10, CRM
exported on D1, D8 and D10 with the generator's conversions, churns and plan changes between),
loads D1..D8 with `cs-pipeline backfill` (not timed), then runs `cs-pipeline materialize` for
D9, whose CRM is D8's export again (a day that changed nothing), and for D10 (a new export),
each a fresh process. For each day it prints the rows the CRM snapshot tables gained and the
wall time of the command; then, per day, the seconds of the `crm_snapshot` and `accounts` work
(their `seconds` metadata in the Dagster instance) and whether the day was skipped as
unchanged. The snapshot tables are whichever the warehouse has: the versions
(crm_*_versions, account_versions, hierarchy_issue_versions) or, for the code before them,
the full copies per date (crm_*_raw, account_snapshots, hierarchy_issue_snapshots), so that
`--python` may name the interpreter of another checkout of cs_pipeline to compare with.

Usage: python bench/snapshot_storage.py [--accounts N] [--events-per-day N] [--workdir DIR]
       [--python PATH] [--site NAME]
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from cs_pipeline.demo.generator import generate_tenant

DEMO = Path(__file__).resolve().parents[1] / "demo"
END_DATE = date(2025, 11, 27)
DAYS = 10
SNAPSHOT_TABLES = (
    "crm_account_versions", "crm_asset_versions", "crm_contact_versions", "account_versions",
    "hierarchy_issue_versions", "crm_accounts_raw", "crm_assets_raw", "crm_contacts_raw", "account_snapshots",
    "hierarchy_issue_snapshots",
)  # fmt: skip


def snapshot_rows(warehouse: Path) -> int:
    """The rows of the CRM snapshot tables the warehouse has."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        present = {name for (name,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        return sum(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in SNAPSHOT_TABLES if t in present)


def step_seconds(site: Path, days: list[date]) -> list[str]:
    """Per day, the seconds of the crm_snapshot and accounts work its last materialisation recorded,
    and `skipped_unchanged` where the code records it."""
    os.environ["DAGSTER_HOME"] = str(site / "dagster_home")
    instance = dg.DagsterInstance.get()
    lines = []
    for day in days:
        found = []
        for asset in ("crm_snapshot", "accounts"):
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[str(day)]), limit=1
            ).records
            metadata = records[0].asset_materialization.metadata
            skipped = metadata.get("skipped_unchanged")
            said = "" if skipped is None else f" skipped={skipped.value}"
            found.append(f"{asset} {metadata['seconds'].value:.2f}s{said}")
        lines.append(f"{day}: " + ", ".join(found))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--events-per-day", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/snapshot_storage"))
    parser.add_argument("--python", default=sys.executable, help="the interpreter whose cs_pipeline runs")
    parser.add_argument("--site", default="site", help="the folder of this run's warehouse under the workdir")
    args = parser.parse_args()

    workdir = args.workdir.resolve()
    days = [END_DATE - timedelta(days=n) for n in reversed(range(DAYS))]
    marker = workdir / f"generated-{args.accounts}-{args.events_per_day}"
    if not marker.exists():
        shutil.rmtree(workdir, ignore_errors=True)
        generate_tenant(
            workdir, end_date=END_DATE, days=DAYS, accounts=args.accounts, events_per_day=args.events_per_day,
            formats=("parquet",), crm_export_every=7, progress=None,
        )  # fmt: skip
        marker.touch()
    site = workdir / args.site
    shutil.rmtree(site, ignore_errors=True)
    site.mkdir()
    (site / "cs_pipeline.yaml").write_text(DEMO.joinpath("cs_pipeline.yaml").read_text() + f'start_date: "{days[0]}"\n')
    shutil.copytree(DEMO / "sql", site / "sql")
    for shared in ("crm", "landing"):
        (site / shared).symlink_to(workdir / shared)
    env = {**os.environ, "DAGSTER_HOME": str(site / "dagster_home")}
    cli = [args.python, "-m", "cs_pipeline.cli", "--config", str(site / "cs_pipeline.yaml")]

    subprocess.run([*cli, "backfill", "--start", str(days[0]), "--end", str(days[-3])], env=env, check=True)
    warehouse = site / "warehouse.duckdb"
    results = [f"after D1..D8: {snapshot_rows(warehouse):,} snapshot rows"]
    for day, what in ((days[-2], "D9, the CRM unchanged"), (days[-1], "D10, a new export")):
        before = snapshot_rows(warehouse)
        started = time.monotonic()
        subprocess.run([*cli, "materialize", "--date", str(day)], env=env, check=True)
        seconds = time.monotonic() - started
        results.append(f"{what}: {snapshot_rows(warehouse) - before:+,} snapshot rows, daily run {seconds:.1f}s")
    print(f"\n{args.accounts:,} accounts, {args.events_per_day:,} events a day ({args.python})")
    print("\n".join([*results, *step_seconds(site, days)]))


if __name__ == "__main__":
    main()
