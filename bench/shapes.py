"""Benchmark: the daily run on tenants of other shapes, against the hand-written yardstick (issue 14).

For each shape of bench/shape.py (users per account 1-20, actions per module 5-40, modules up
to 100, 1-5 profiles, a count_action, a distinct_users_of_module and a sql custom metric), it
generates the tenant (default: 100,000 accounts, 2 million events a day, 30 days D1..D30,
parquet), loads D1..D29 through the `cs-pipeline` CLI and the yardstick (bench/yardstick.py),
untimed, then times the pipeline's daily run of D30 (`cs-pipeline materialize --date D30`)
and the yardstick's D30 alternately, each repeat on a fresh copy of the loaded state, process
start included for both. After the last repeat the yardstick's --check compares its metrics,
roll-ups and health of D30 with the pipeline's: a ratio against a yardstick that did less work
would mean nothing. It reports per shape the runs, the median ratio and peak RSS, and the
worst ratio (target: at most 1.5).

Usage: python bench/shapes.py [--shapes NAME ...] [--accounts N] [--events-per-day N] [--days N]
       [--repeats N] [--workdir DIR] [--reuse-loaded] [--load-only]
The workdir keeps each shape's generated files and loaded state (--reuse-loaded keeps them).
--load-only generates and loads, untimed, and stops: the loading does not need a quiet machine,
the timing that `--reuse-loaded` does later does.
"""

import argparse
import sys
from pathlib import Path

from daily_run import Site
from shape import SHAPES, shape_tenant
from side_by_side import agrees, load, time_day


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES), default=list(SHAPES))
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--events-per-day", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=30, help="the last one is timed, the others loaded")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each, alternately, on fresh copies")
    parser.add_argument("--workdir", type=Path, default=Path("bench/out/shapes"))
    parser.add_argument("--reuse-loaded", action="store_true", help="keep the loaded state of an earlier run")
    parser.add_argument("--load-only", action="store_true", help="generate and load each shape, time nothing")
    args = parser.parse_args()

    rows, ratios, disagreeing = [], {}, []
    for name in args.shapes:
        shape = SHAPES[name]
        workdir = (args.workdir / name).resolve()
        days = shape_tenant(workdir, shape, accounts=args.accounts, events_per_day=args.events_per_day, days=args.days)
        loaded, daily = Site(workdir, "loaded"), Site(workdir, "daily")
        if not (args.reuse_loaded and loaded.folder.exists()):
            loaded.reset()
            load(loaded, days[0], days[-2])
        if args.load_only:
            print(f"{name}: D1..D{args.days - 1} loaded in {loaded.folder}", flush=True)
            continue
        pipeline, hand_written = time_day(loaded, daily, days[-1], args.repeats)
        if not agrees(daily, days[-1]):
            disagreeing.append(name)
        ratios[name] = pipeline.median / hand_written.median
        lowest, highest = shape.users_per_account
        rows.append(
            f"| {name} | {lowest}-{highest} | {shape.modules} x {shape.actions_per_module} | {shape.profiles} "
            f"| {pipeline.shown()} | {hand_written.shown()} | {ratios[name]:.2f} "
            f"| {max(pipeline.peaks):.2f} / {max(hand_written.peaks):.2f} |"
        )
    if args.load_only:
        return
    worst = max(ratios, key=ratios.get)
    print(
        f"\n{args.accounts:,} accounts, {args.events_per_day:,} events a day, D{args.days} with "
        f"D1..D{args.days - 1} loaded, {args.repeats} runs each\n\n"
        "| shape | users per account | modules x actions | profiles | pipeline s | yardstick s | ratio (medians) "
        "| peak RSS GiB (pipeline / yardstick) |\n|---|---|---|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\nworst ratio: {ratios[worst]:.2f} ({worst}); target at most 1.5",
        flush=True,
    )
    if disagreeing:
        sys.exit(f"the yardstick disagrees with the pipeline on {', '.join(disagreeing)}: its ratio is no yardstick")


if __name__ == "__main__":
    main()
