"""Profile one daily run: seconds and peak memory per asset, per check and per SQL statement.

Runs `cs-pipeline materialize --date D` in this process on a copy of a loaded site (a folder
of `bench/daily_run.py`: its cs_pipeline.yaml, warehouse and dagster_home; the copy is made
here and removed after, the site itself is left as it was), with every warehouse connection
wrapped so that each statement is timed (a multi-statement SQL file statement by statement),
each asset's and check's work timed as a whole, and the process's resident memory sampled
every 20 ms. Prints the assets and checks by seconds (and the process's CPU seconds during
each), the peak memory during each, the statements of the highest memory, and every statement
of `--over` seconds or more; writes everything to `--json`.

The figures are those of one run on a shared machine: compare two code versions by running
this alternately on the same site (`--python` of the other checkout is not needed: run the
other checkout's copy of this script with its own venv).

Usage: python bench/profile_day.py --site bench/out/daily_run/loaded --date 2025-11-27
       [--json FILE] [--over SECONDS] [--keep]
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import cs_pipeline.assets_common.range_step as range_step
import cs_pipeline.warehouse as warehouse

TOTAL = "(the whole work)"
OUTSIDE = "outside the steps' work"


class Profile:
    """What the run spent: (label, seconds, statement) entries and peak RSS by label and statement."""

    def __init__(self) -> None:
        self.label = OUTSIDE  # the asset or check at work
        self.statement = "python"  # the statement running, else "python"
        self.entries: list[tuple[str, float, str]] = []
        self.cpu_by_label: dict[str, float] = defaultdict(float)  # the process's CPU seconds (DuckDB's threads too)
        self.peak_by_label: dict[str, int] = defaultdict(int)
        self.peak_by_statement: dict[str, int] = defaultdict(int)

    def timed(self, statement: str, run):
        self.statement = " ".join(statement.split())[:160]
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            return run()
        finally:
            self.entries.append((self.label, time.perf_counter() - started, statement))
            if statement == TOTAL:
                self.cpu_by_label[self.label] += time.process_time() - cpu_started
            self.statement = "python"

    def sample_memory(self) -> None:
        while True:
            with open("/proc/self/status") as status:
                kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS"))
            self.peak_by_label[self.label] = max(self.peak_by_label[self.label], kib)
            key = f"{self.label} | {self.statement}"
            self.peak_by_statement[key] = max(self.peak_by_statement[key], kib)
            time.sleep(0.02)


PROFILE = Profile()


class TimedRelation:
    """A relation whose fetches are timed (query_frame's `.pl()`, `.to_arrow_reader()`...)."""

    def __init__(self, relation, query: str) -> None:
        self._relation, self._query = relation, query

    def __getattr__(self, name: str):
        found = getattr(self._relation, name)
        if not callable(found) or not name.startswith(("pl", "fetch", "df", "arrow", "to_arrow")):
            return found
        return lambda *args, **kwargs: PROFILE.timed(self._query, lambda: found(*args, **kwargs))


class TimedConnection:
    """A DuckDB connection whose statements are timed one by one."""

    def __init__(self, connection) -> None:
        self._connection = connection

    def __getattr__(self, name: str):
        return getattr(self._connection, name)

    def execute(self, query, parameters=None):
        if parameters is None and isinstance(query, str):
            for statement in self._connection.extract_statements(query):
                PROFILE.timed(statement.query, lambda s=statement: self._connection.execute(s.query))
            return self
        PROFILE.timed(str(query), lambda: self._connection.execute(query, parameters))
        return self

    def sql(self, query: str, **kwargs):
        return TimedRelation(self._connection.sql(query, **kwargs), query)


def instrument() -> None:
    """Wrap the warehouse's connections, each daily asset's work and each check's evaluation."""
    connect = warehouse.connect
    warehouse.connect = lambda *args, **kwargs: TimedConnection(connect(*args, **kwargs))

    def labelled(label: str, work):
        def run(*args):
            PROFILE.label = label
            try:
                return PROFILE.timed(TOTAL, lambda: work(*args))
            finally:
                PROFILE.label = OUTSIDE

        return run

    materialize_day = range_step._materialize_day
    range_step._materialize_day = lambda unit, *rest: labelled(
        " + ".join(sorted(spec.key.to_user_string() for spec in unit.specs)), materialize_day
    )(unit, *rest)
    build_range_step = range_step.build_range_step

    def build(name, work, checks, partitions, **kwargs):
        checks = [replace(c, evaluate=labelled(f"check {c.spec.name}", c.evaluate)) for c in checks]
        return build_range_step(name, work, checks, partitions, **kwargs)

    range_step.build_range_step = build


def report(total: float, over: float) -> None:
    work, statements = defaultdict(float), defaultdict(float)
    for label, seconds, statement in PROFILE.entries:
        (work if statement == TOTAL else statements)[label] += seconds
    print(f"\nwhole command in process: {total:.1f} s\n\nseconds  (of which SQL)  CPU s  work")
    for label, seconds in sorted(work.items(), key=lambda item: -item[1]):
        print(f"{seconds:7.2f}  ({statements[label]:5.2f})      {PROFILE.cpu_by_label[label]:6.2f}  {label}")
    print(f"{statements[OUTSIDE]:7.2f}  SQL {OUTSIDE} (publishing, the runs' own queries)")
    print("\npeak RSS (MiB)  during")
    for label, kib in sorted(PROFILE.peak_by_label.items(), key=lambda item: -item[1]):
        print(f"{kib / 1024:7.0f}         {label}")
    print("\nthe statements of the highest peaks")
    for key, kib in sorted(PROFILE.peak_by_statement.items(), key=lambda item: -item[1])[:8]:
        print(f"{kib / 1024:7.0f}  {key[:150]}")
    print(f"\nstatements of {over} s or more")
    for label, seconds, statement in sorted(PROFILE.entries, key=lambda entry: -entry[1]):
        if statement != TOTAL and seconds >= over:
            print(f"{seconds:6.2f}  {label[:28]:28}  {' '.join(statement.split())[:120]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--site", type=lambda text: Path(text).resolve(), required=True, help="a loaded site of bench/daily_run.py"
    )
    parser.add_argument("--date", required=True, help="the day to run, YYYY-MM-DD")
    parser.add_argument("--json", type=Path, help="write every timed statement here")
    parser.add_argument("--over", type=float, default=0.15, help="list the statements taking this long or more")
    parser.add_argument("--keep", action="store_true", help="keep the copy the run wrote (its path is printed)")
    args = parser.parse_args()

    copy = Path(tempfile.mkdtemp(prefix="profile-day-", dir=args.site.parent)) / "site"
    shutil.copytree(args.site, copy, symlinks=True)
    os.sync()  # else the run shares the disk with the write-back of the copy
    os.environ["DAGSTER_HOME"] = str(copy / "dagster_home")
    os.environ["CS_PIPELINE_CONFIG"] = str(copy / "cs_pipeline.yaml")
    instrument()
    threading.Thread(target=PROFILE.sample_memory, daemon=True).start()
    from cs_pipeline import cli

    started = time.perf_counter()
    code = cli.main(["--config", str(copy / "cs_pipeline.yaml"), "materialize", "--date", args.date])
    total = time.perf_counter() - started
    report(total, args.over)
    if args.json:
        args.json.write_text(json.dumps({"total": total, "entries": PROFILE.entries, "cpu": PROFILE.cpu_by_label}))
    if args.keep:
        print(f"\nthe run's copy: {copy}")
    else:
        shutil.rmtree(copy.parent)
    sys.exit(code)


if __name__ == "__main__":
    main()
