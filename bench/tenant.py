"""The benchmarks' tenant: generated once per workdir and size, then reused."""

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


def bundled_config(workdir: Path, first_day: date) -> None:
    """The bundled config (its profiles and custom metrics, its SQL metric) in workdir, starting at first_day."""
    (workdir / "cs_pipeline.yaml").write_text(
        DEMO.joinpath("cs_pipeline.yaml").read_text() + f'start_date: "{first_day}"\n'
    )
    shutil.copytree(DEMO / "sql", workdir / "sql", dirs_exist_ok=True)
