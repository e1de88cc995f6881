"""The pipeline's daily run and the yardstick's day, timed side by side on copies of one state.

A site (daily_run.Site) holds the pipeline's warehouse and Dagster instance and, beside them,
the yardstick's DuckDB file (`yardstick.duckdb`): both load the same days untimed, then each
repeat copies that state afresh and times both commands on it, alternating which goes first
so that neither always meets a warmer page cache.
"""

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from daily_run import Site, timed  # bench/: the script's folder is on sys.path

YARDSTICK = Path(__file__).resolve().with_name("yardstick.py")


@dataclass(frozen=True)
class Runs:
    """Wall seconds and peak RSS (GiB) of each timed run of one command."""

    seconds: list[float]
    peaks: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def shown(self) -> str:
        return ", ".join(f"{s:.1f}" for s in self.seconds)


def yardstick(site: Site, *arguments: str) -> tuple[list[str], dict[str, str]]:
    """The yardstick's command on the site's config and its own DuckDB file."""
    config = site.folder / "cs_pipeline.yaml"
    command = [sys.executable, str(YARDSTICK), "--config", str(config), "--db", str(site.folder / "yardstick.duckdb")]
    return [*command, *arguments], dict(os.environ)


def load(site: Site, first: date, last: date, *, with_yardstick: bool = True) -> None:
    """first..last into the site, untimed: the pipeline's backfill and the yardstick's days."""
    print(f"loading {first}..{last} (not timed)", flush=True)
    timed(*site.cli("backfill", "--start", str(first), "--end", str(last)))
    if with_yardstick:
        timed(*yardstick(site, "--load-days", str(first), str(last)))


def time_day(loaded: Site, daily: Site, day: date, repeats: int, *, with_yardstick: bool = True) -> tuple[Runs, Runs]:
    """The pipeline's daily run of `day` and the yardstick's, each repeat on a fresh copy of `loaded`."""
    pipeline: list[tuple[float, float]] = []
    hand_written: list[tuple[float, float]] = []
    for repeat in range(repeats):
        daily.reset(from_site=loaded)
        os.sync()  # else the timed run shares the disk with the write-back of the copy
        commands = [(pipeline, daily.cli("materialize", "--date", str(day)))]
        if with_yardstick:
            commands.append((hand_written, yardstick(daily, "--day", str(day))))
        for results, command in commands if repeat % 2 == 0 else reversed(commands):
            results.append(timed(*command))
    return _runs(pipeline), _runs(hand_written)


def agrees(site: Site, day: date) -> bool:
    """Whether the yardstick's metrics, roll-ups and health of `day` equal the pipeline's (its --check)."""
    command, env = yardstick(site, "--day", str(day), "--check", str(site.folder / "warehouse.duckdb"))
    return subprocess.run(command, env=env, check=False).returncode == 0


def _runs(results: list[tuple[float, float]]) -> Runs:
    return Runs(seconds=[s for s, _ in results], peaks=[p for _, p in results])
