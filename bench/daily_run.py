"""Benchmark: the daily run and a 30-day backfill, as a user runs them (the `cs-pipeline` CLI).

Generates a tenant (default: 100,000 accounts with hierarchy and products, 2 million events a
day over 30 days, parquet) with the bundled config's profiles and custom metrics, then times
two commands, each a fresh process (process start included):

  1. `cs-pipeline backfill --start D1 --end D30` on an empty warehouse and Dagster instance
     (every asset and every profile for 30 days), and
  2. `cs-pipeline materialize --date D30` with the 29 days before loaded (the daily run:
     CRM snapshot, ingest, metrics and health for every profile).

Peak memory is the largest resident set of the command's process (wait4's rusage).
Usage: python bench/daily_run.py [--accounts N] [--events-per-day N] [--days N] [--workdir DIR]
The workdir keeps the generated files, so a second run skips the generation.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tenant import bench_tenant  # bench/tenant.py: the script's folder is on sys.path

DEMO = Path(__file__).resolve().parents[1] / "demo"


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS GiB) of one command; its output streams through."""
    started = time.monotonic()
    process = subprocess.Popen(command, env=env)
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command)}")
    return seconds, usage.ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events-per-day", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/daily_run"))
    args = parser.parse_args()

    workdir = args.workdir.resolve()
    days = bench_tenant(workdir, accounts=args.accounts, events_per_day=args.events_per_day, days=args.days)
    # the bundled config (profiles, custom metrics), starting at the tenant's first day
    config = workdir / "cs_pipeline.yaml"
    config.write_text(DEMO.joinpath("cs_pipeline.yaml").read_text() + f'start_date: "{days[0]}"\n')
    shutil.copytree(DEMO / "sql", workdir / "sql", dirs_exist_ok=True)
    for stale in [workdir / "warehouse.duckdb", workdir / "warehouse.duckdb.wal", workdir / "dagster_home"]:
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)

    cli = [sys.executable, "-m", "cs_pipeline.cli", "--config", str(config)]
    env = {**os.environ, "DAGSTER_HOME": str(workdir / "dagster_home")}
    backfill = timed([*cli, "backfill", "--start", str(days[0]), "--end", str(days[-1])], env)
    daily = timed([*cli, "materialize", "--date", str(days[-1])], env)
    print(
        f"\n{args.accounts:,} accounts, {args.events_per_day:,} events a day, {args.days} days\n"
        f"backfill of {args.days} days: {backfill[0]:.0f}s, peak RSS {backfill[1]:.2f} GiB\n"
        f"daily run of {days[-1]} with {args.days - 1} days loaded: {daily[0]:.1f}s, peak RSS {daily[1]:.2f} GiB",
        flush=True,
    )


if __name__ == "__main__":
    main()
