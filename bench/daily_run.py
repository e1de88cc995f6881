"""Benchmark: the daily run and a 30-day backfill, as a user runs them (the `cs-pipeline` CLI).

Generates a tenant (default: 100,000 accounts with hierarchy and products, 2 million events a
day over 30 days D1..D30, parquet) with the bundled config's profiles and custom metrics, then
times, each command a fresh process (process start included):

  1. the 30-day backfill: `cs-pipeline backfill --start D1 --end D30` on an empty warehouse
     and Dagster instance (every asset and every profile for 30 days);
  2. the daily run: `cs-pipeline materialize --date D30` on a warehouse holding D1..D29 only
     (the CRM snapshot, ingest of a day never seen, metrics and health for every profile),
     as the daily schedule meets it. D1..D29 are loaded once by an untimed backfill; each
     repeat starts from a copy of that state;
  3. publishing that day: after each daily run, the partitions a daily run publishes (the
     day's partitions of every published table, the current-state tables whole, account_rollups
     twice as its two writers do) are queued again and published (publish.drain), timed alone
     and set against the daily run, which includes it.

Peak memory is the largest resident set of the command's process (wait4's rusage).
Usage: python bench/daily_run.py [--accounts N] [--events-per-day N] [--days N] [--workdir DIR]
       [--daily-repeats N] [--skip-backfill] [--reuse-loaded]
The workdir keeps the generated files, so a second run skips the generation.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tenant import bench_tenant, bundled_config  # bench/tenant.py: the script's folder is on sys.path


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS GiB) of one command; its output streams through."""
    started = time.monotonic()
    process = subprocess.Popen(command, env=env)
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command)}")
    return seconds, usage.ru_maxrss / 2**20


class Site:
    """A warehouse and Dagster instance in a folder of their own; the folder's config is the
    shared one and its crm/ and landing/ link to the shared tenant files."""

    def __init__(self, workdir: Path, name: str) -> None:
        self.workdir = workdir
        self.folder = workdir / name

    def reset(self, from_site: "Site | None" = None) -> None:
        """Empty, or a copy of another site's warehouse and instance."""
        shutil.rmtree(self.folder, ignore_errors=True)
        if from_site is not None:
            shutil.copytree(from_site.folder, self.folder, symlinks=True)
            return
        self.folder.mkdir(parents=True)
        shutil.copy(self.workdir / "cs_pipeline.yaml", self.folder)
        shutil.copytree(self.workdir / "sql", self.folder / "sql")
        for shared in ("crm", "landing"):
            (self.folder / shared).symlink_to(self.workdir / shared)

    def cli(self, *arguments: str) -> tuple[list[str], dict[str, str]]:
        command = [sys.executable, "-m", "cs_pipeline.cli", "--config", str(self.folder / "cs_pipeline.yaml")]
        return [*command, *arguments], {**os.environ, "DAGSTER_HOME": str(self.folder / "dagster_home")}


def time_publishing(site: Site, day: str) -> float:
    """Seconds to publish again what the daily run of `day` published (see the module docstring)."""
    from cs_pipeline import publish
    from cs_pipeline.config import load_config
    from cs_pipeline.warehouse import connect

    config = load_config(site.folder / "cs_pipeline.yaml")
    con = connect(config.warehouse)
    try:
        con.begin()
        for table, columns in publish.PUBLISHED.items():
            if columns == ("date", "profile"):
                publish.queue(con, table, [(day, profile) for profile in config.profile_names()])
            else:
                publish.queue(con, table, [(day,)] if columns else [()])
        publish.queue(con, "account_rollups", [(day,)])
        con.commit()
        started = time.monotonic()
        publish.drain(con, config.published)
        return time.monotonic() - started
    finally:
        con.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events-per-day", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/daily_run"))
    parser.add_argument("--daily-repeats", type=int, default=3, help="timed daily runs, each on a fresh copy")
    parser.add_argument("--skip-backfill", action="store_true", help="time the daily run only")
    parser.add_argument(
        "--reuse-loaded", action="store_true", help="keep the D1..D29 state of an earlier run instead of loading it"
    )
    args = parser.parse_args()

    workdir = args.workdir.resolve()
    days = bench_tenant(workdir, accounts=args.accounts, events_per_day=args.events_per_day, days=args.days)
    bundled_config(workdir, days[0])
    first, before_last, last = (str(day) for day in (days[0], days[-2], days[-1]))
    results = []

    if not args.skip_backfill:
        backfill = Site(workdir, "backfill")
        backfill.reset()
        seconds, peak = timed(*backfill.cli("backfill", "--start", first, "--end", last))
        results.append(f"backfill of {args.days} days on an empty warehouse: {seconds:.0f}s, peak RSS {peak:.2f} GiB")

    loaded = Site(workdir, "loaded")
    if not (args.reuse_loaded and loaded.folder.exists()):
        loaded.reset()
        print(f"loading {first}..{before_last} for the daily run (not timed)", flush=True)
        timed(*loaded.cli("backfill", "--start", first, "--end", before_last))
    daily = Site(workdir, "daily")
    for repeat in range(1, args.daily_repeats + 1):
        daily.reset(from_site=loaded)
        os.sync()  # else the timed run shares the disk with the write-back of the 4 GB copy
        seconds, peak = timed(*daily.cli("materialize", "--date", last))
        publishing = time_publishing(daily, last)
        results.append(
            f"daily run of {last} with {args.days - 1} days loaded (#{repeat}): {seconds:.1f}s, "
            f"peak RSS {peak:.2f} GiB; publishing the day {publishing:.2f}s "
            f"({100 * publishing / seconds:.1f} % of the run)"
        )
    print(f"\n{args.accounts:,} accounts, {args.events_per_day:,} events a day, {args.days} days", flush=True)
    print("\n".join(results), flush=True)


if __name__ == "__main__":
    main()
