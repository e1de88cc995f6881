"""Benchmark: how the daily run's cost grows with the data and with the stored history (issue 14).

1. Size: the daily run of D30 with D1..D29 loaded (as bench/daily_run.py: the bench tenant,
   the bundled config, `cs-pipeline materialize --date D30` on fresh copies of the loaded
   state) at several events a day and several account counts. By default the two axes
   through the base cell: 0.5, 1, 2, 4 M events a day at 100,000 accounts, and 25,000,
   100,000, 400,000 accounts at 2 M events a day (--cross: every combination). Each step
   along an axis shows its growth exponent, log(time ratio) / log(size ratio): at most 1 is
   "no worse than linear".
2. History: on one tenant of the base cell with --history-days days (default 34 and 90), the
   daily run of day 34 with days 1..33 loaded, then of day 90 with days 1..89 loaded, and
   their ratio (target: at most 1.1). Only the history may differ: the two days are the same
   weekday (the generator's volume follows the week: a Sunday has half a Thursday's events),
   both with the metrics' windows full (from day 30 on), and the shorter day stores the same
   CRM change as the last (the tenant exports its CRM on its first and last day only, so the
   shorter one's site gets a CRM folder of its own with the last export dated on its day).

--with-yardstick times the yardstick (bench/yardstick.py) beside each daily run too. Prints
markdown tables for the README.

Usage: python bench/growth.py [--events-per-day N ...] [--accounts N ...] [--base-events N]
       [--base-accounts N] [--cross] [--history-days N N] [--skip-size] [--skip-history]
       [--repeats N] [--with-yardstick] [--workdir DIR] [--load-only] [--reuse-loaded]

Loading takes hours and needs no quiet machine; timing does. --load-only generates and loads
every state (history: one site per history length) and times nothing; a later run with
--reuse-loaded times them on a quiet machine.
"""

import argparse
import math
import shutil
from datetime import date
from pathlib import Path

from daily_run import Site
from side_by_side import Runs, load, time_day
from tenant import bench_tenant, bundled_config


def cells(args: argparse.Namespace) -> list[tuple[int, int]]:
    """(events a day, accounts) of every measurement of the size table, in order."""
    if args.cross:
        return [(e, a) for a in args.accounts for e in args.events_per_day]
    along_events = [(e, args.base_accounts) for e in args.events_per_day]
    along_accounts = [(args.base_events, a) for a in args.accounts if (args.base_events, a) not in along_events]
    return along_events + along_accounts


def measured(
    workdir: Path, events: int, accounts: int, days: int, args: argparse.Namespace
) -> tuple[Runs, Runs] | None:
    """The daily run of the last of `days` days with the others loaded, on the bench tenant of
    that size; None with --load-only."""
    workdir = workdir.resolve()
    window = bench_tenant(workdir, accounts=accounts, events_per_day=events, days=days)
    bundled_config(workdir, window[0])
    loaded = Site(workdir, "loaded")
    if not (args.reuse_loaded and loaded.folder.exists()):
        loaded.reset()
        load(loaded, window[0], window[-2], with_yardstick=args.with_yardstick)
    if args.load_only:
        return None
    return time_day(loaded, Site(workdir, "daily"), window[-1], args.repeats, with_yardstick=args.with_yardstick)


def exponent(results: dict[tuple[int, int], float], cell: tuple[int, int], axis: int) -> str:
    """The growth exponent from the next smaller cell along an axis (0: events, 1: accounts) to
    this one, log(time ratio) / log(size ratio); blank when there is none."""
    smaller = [c for c in results if c[1 - axis] == cell[1 - axis] and c[axis] < cell[axis]]
    if not smaller:
        return ""
    previous = max(smaller, key=lambda c: c[axis])
    return f"{math.log(results[cell] / results[previous]) / math.log(cell[axis] / previous[axis]):.2f}"


def size_table(args: argparse.Namespace) -> str:
    measurements = {}
    for events, accounts in cells(args):
        workdir = args.workdir / f"{accounts}-{events}"
        measurements[events, accounts] = measured(workdir, events, accounts, args.days, args)
    if args.load_only:
        return "(loaded, not timed)"
    medians = {cell: pipeline.median for cell, (pipeline, _) in measurements.items()}
    header = (
        "| events/day | accounts | daily run s | peak RSS GiB | s per M events/day "
        "| growth exponent (events) | growth exponent (accounts) |"
    )
    if args.with_yardstick:
        header += " yardstick s |"
    rows = [header, "|---" * (header.count("|") - 1) + "|"]
    for (events, accounts), (pipeline, hand_written) in measurements.items():
        cell = (events, accounts)
        rows.append(
            f"| {events / 1e6:g} M | {accounts:,} | {pipeline.shown()} | {max(pipeline.peaks):.2f} "
            f"| {pipeline.median / (events / 1e6):.1f} | {exponent(medians, cell, 0)} | {exponent(medians, cell, 1)} |"
            + (f" {hand_written.shown()} |" if args.with_yardstick else "")
        )
    return "\n".join(rows)


def history_table(args: argparse.Namespace) -> str:
    """Day N of stored history against day M, on one tenant (the days before each loaded)."""
    shorter, longer = args.history_days
    workdir = (args.workdir / f"history-{args.base_accounts}-{args.base_events}").resolve()
    window = bench_tenant(workdir, accounts=args.base_accounts, events_per_day=args.base_events, days=longer)
    bundled_config(workdir, window[0])
    # Each state is kept in a site of its own, so that both can be timed later with --reuse-loaded.
    early_loaded, late_loaded = Site(workdir, f"loaded-{shorter}"), Site(workdir, f"loaded-{longer}")
    if not (args.reuse_loaded and late_loaded.folder.exists()):
        early_loaded.reset()
        load(early_loaded, window[0], window[shorter - 2], with_yardstick=args.with_yardstick)
        late_loaded.reset(from_site=early_loaded)
        load(late_loaded, window[shorter - 1], window[longer - 2], with_yardstick=args.with_yardstick)
        _last_export_also_on(early_loaded, window[shorter - 1])
    if args.load_only:
        return "(loaded, not timed)"
    daily = Site(workdir, "daily")
    early, early_yardstick = time_day(
        early_loaded, daily, window[shorter - 1], args.repeats, with_yardstick=args.with_yardstick
    )
    late, late_yardstick = time_day(
        late_loaded, daily, window[longer - 1], args.repeats, with_yardstick=args.with_yardstick
    )
    rows = [
        f"| day {shorter} ({window[shorter - 1]}) | {early.shown()} | {max(early.peaks):.2f} |",
        f"| day {longer} ({window[longer - 1]}) | {late.shown()} | {max(late.peaks):.2f} |",
    ]
    ratio = f"\n\nday {longer} / day {shorter}: {late.median / early.median:.2f} (target at most 1.1)"
    if args.with_yardstick:
        ratio += f"; the yardstick's: {late_yardstick.median / early_yardstick.median:.2f}"
    return "| daily run of | seconds | peak RSS GiB |\n|---|---|---|\n" + "\n".join(rows) + ratio


def _last_export_also_on(site: Site, day: date) -> None:
    """Gives `site` a CRM folder of its own: the shared one's exports before `day`, and its last
    export dated `day`, so that the daily run of `day` stores the change the last day stores."""
    shared = sorted((site.workdir / "crm").glob("date=*"))
    own = site.folder / "crm"
    own.unlink()  # the link to the shared folder (Site.reset)
    own.mkdir()
    for export in shared:
        if export.name < f"date={day}":
            shutil.copytree(export, own / export.name)
    shutil.copytree(shared[-1], own / f"date={day}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events-per-day", type=int, nargs="+", default=[500_000, 1_000_000, 2_000_000, 4_000_000])
    parser.add_argument("--accounts", type=int, nargs="+", default=[25_000, 100_000, 400_000])
    parser.add_argument("--base-events", type=int, default=2_000_000, help="events a day along the accounts axis")
    parser.add_argument("--base-accounts", type=int, default=100_000, help="accounts along the events axis")
    parser.add_argument("--cross", action="store_true", help="every (events, accounts) combination")
    parser.add_argument("--days", type=int, default=30, help="days of the size tenants; the last one is timed")
    parser.add_argument("--history-days", type=int, nargs=2, default=[34, 90], metavar=("SHORTER", "LONGER"))
    parser.add_argument("--skip-size", action="store_true")
    parser.add_argument("--skip-history", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--with-yardstick", action="store_true", help="time the yardstick beside each daily run")
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/growth"))
    parser.add_argument("--load-only", action="store_true", help="generate and load every state, time nothing")
    parser.add_argument(
        "--reuse-loaded", action="store_true", help="keep the loaded states of an earlier run instead of loading them"
    )
    args = parser.parse_args()
    args.workdir = args.workdir.resolve()
    shorter, longer = args.history_days
    if not 2 <= shorter < longer or (longer - shorter) % 7:
        parser.error("--history-days needs 2 <= SHORTER < LONGER, a whole number of weeks apart")

    tables = []
    if not args.skip_size:
        tables.append(f"D{args.days} with D1..D{args.days - 1} loaded, {args.repeats} runs each\n\n{size_table(args)}")
    if not args.skip_history:
        tables.append(
            f"{args.base_accounts:,} accounts, {args.base_events:,} events a day, {args.repeats} runs each\n\n"
            + history_table(args)
        )
    print("\n\n" + "\n\n".join(tables), flush=True)


if __name__ == "__main__":
    main()
