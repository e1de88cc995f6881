"""Benchmark: ingest one day of usage events with a month already stored.

Generates a tenant (default: 100,000 accounts, 2 million events a day, parquet), ingests
the first days through the real code path, then times the last day twice:

  1. `ingest_delivery` alone (read files + stage + limits + dedupe + store + validate), and
  2. the `usage_events` asset through Dagster (`dg.materialize`, in process).

Usage: python bench/ingest.py [--accounts N] [--events-per-day N] [--days N] [--workdir DIR]
The workdir keeps the generated files and warehouse, so a second run skips the set-up.
"""

import argparse
import resource
import time
from pathlib import Path

import dagster as dg
from tenant import bench_tenant  # bench/tenant.py: the script's folder is on sys.path

from cs_pipeline.config import load_config
from cs_pipeline.definitions import build_definitions
from cs_pipeline.usage.ingest import ingest_delivery
from cs_pipeline.warehouse import connect

CONFIG = """\
crm: {{source: files, files_dir: crm/}}
landing: landing/
warehouse: warehouse.duckdb
start_date: "{start}"
profiles:
  - name: default
    good: [{{metric: usage_frequency, op: ">=", value: Weekly}}]
    poor: [{{metric: usage_frequency, op: "==", value: Inactive}}]
"""


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events-per-day", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/ingest"))
    args = parser.parse_args()

    workdir = args.workdir.resolve()
    days = bench_tenant(workdir, accounts=args.accounts, events_per_day=args.events_per_day, days=args.days)
    config_path = workdir / "cs_pipeline.yaml"
    config_path.write_text(CONFIG.format(start=days[0].isoformat()))
    marker = workdir / "ingested"  # the days before the timed one are stored
    if not marker.exists():
        config = load_config(config_path)
        config.warehouse.unlink(missing_ok=True)
        con = connect(config.warehouse)
        for day in days[:-1]:
            started = time.monotonic()
            result = ingest_delivery(
                con, landing=config.landing, partition_date=day, module_limit=100, action_limit=500, run_id="setup"
            )
            print(f"  stored {day}: {result.events_stored:,} events in {time.monotonic() - started:.1f}s", flush=True)
        con.close()
        marker.touch()

    config = load_config(config_path)
    day = days[-1]
    con = connect(config.warehouse)
    [(stored,)] = con.execute("SELECT count(*) FROM usage_events WHERE partition_date < ?", [day]).fetchall()
    started = time.monotonic()
    result = ingest_delivery(
        con, landing=config.landing, partition_date=day, module_limit=100, action_limit=500, run_id="bench"
    )
    ingest_seconds = time.monotonic() - started
    con.close()

    defs = build_definitions(config)
    started = time.monotonic()
    # the resolved asset carries its resources; re-ingesting the day is idempotent
    # (usage_events is one of the daily step's assets: only it is selected)
    outcome = dg.materialize(
        [defs.resolve_assets_def("usage_events")], selection=["usage_events"], partition_key=day.isoformat()
    )
    asset_seconds = time.monotonic() - started
    assert outcome.success

    print(
        f"\nday {day}: {result.rows_read:,} rows read, {result.events_stored:,} stored, "
        f"{result.rows_rejected:,} rejected, {result.duplicates:,} duplicates; {stored:,} events already stored\n"
        f"ingest_delivery: {ingest_seconds:.1f}s; usage_events asset through Dagster: {asset_seconds:.1f}s; "
        f"peak RSS {peak_rss_gib():.2f} GiB",
        flush=True,
    )


if __name__ == "__main__":
    main()
