"""The benchmarks' tenant: generated once per workdir and size, then reused."""

import argparse
import shutil
import time
from datetime import date, timedelta
from pathlib import Path

from cs_pipeline.demo.generator import generate_tenant

DEMO = Path(__file__).resolve().parents[1] / "demo"
END_DATE = date(2025, 11, 27)  # a Thursday: the timed day is a full weekday


def bench_tenant(workdir: Path, *, accounts: int, events_per_day: int, days: int) -> list[date]:
    """Generate the tenant (CRM export and parquet deliveries) in workdir unless it is there
    already; returns its days, oldest first."""
    # two CRM exports, on the first and the last day: at 100,000 accounts one export is about
    # 74 MB, so weekly ones over 30 days would add some 280 MB to the tenant
    return generated_tenant(
        workdir, f"{accounts}-{events_per_day}-{days}", accounts=accounts, events_per_day=events_per_day, days=days,
        crm_export_every=days,
    )  # fmt: skip


def generated_tenant(workdir: Path, key: str, *, days: int, **shape: object) -> list[date]:
    """`generate_tenant` into workdir (parquet deliveries of `days` days ending END_DATE; `shape`:
    its other parameters) unless the tenant of that key is there already; returns its days,
    oldest first."""
    marker = workdir / f"generated-{key}-{END_DATE}-dated"
    if not marker.exists():
        shutil.rmtree(workdir, ignore_errors=True)
        started = time.monotonic()
        summary = generate_tenant(
            workdir,
            end_date=END_DATE,
            days=days,
            formats=("parquet",),
            progress=lambda line: print(f"  generated {line}", flush=True),
            **shape,
        )
        print(f"generated {summary.events_written:,} events in {time.monotonic() - started:.0f}s", flush=True)
        marker.touch()
    return [END_DATE - timedelta(days=n) for n in reversed(range(days))]


def bundled_config(workdir: Path, first_day: date) -> Path:
    """The bundled config (profiles, custom metrics, its sql/) in workdir, its partitions from
    the tenant's first day; returns its path."""
    config = workdir / "cs_pipeline.yaml"
    config.write_text(DEMO.joinpath("cs_pipeline.yaml").read_text() + f'start_date: "{first_day}"\n')
    shutil.copytree(DEMO / "sql", workdir / "sql", dirs_exist_ok=True)
    return config


def add_tenant_arguments(parser: argparse.ArgumentParser, workdir: str) -> None:
    """The options of the tenant's size and folder every benchmark on it takes."""
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events-per-day", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=Path(workdir))


def prepared_tenant(args: argparse.Namespace) -> tuple[Path, list[date]]:
    """The tenant those options name, generated unless there, with the bench config: (workdir, days)."""
    workdir = args.workdir.resolve()
    days = bench_tenant(workdir, accounts=args.accounts, events_per_day=args.events_per_day, days=args.days)
    bundled_config(workdir, days[0])
    return workdir, days
