"""Benchmark: `cs-pipeline simulate` of a draft that changes only profiles, over every day of the
benchmark tenant (default: 30 days at 100,000 accounts, 2 million events a day; bench/tenant.py).

Loads the tenant's days into a warehouse once, untimed (a `cs-pipeline backfill`, in the
`simulate` site of the workdir; `--reuse-loaded` keeps an earlier one), writes a draft, the
bundled config with the `digital` profile's engagement thresholds moved (good from 60 to 50,
poor from 10 to 20), and times `cs-pipeline simulate --draft` over the whole range, each repeat
a fresh process (process start included): read the published layer, rescore every day with
the draft, compare, backtest both sides, write the simulation database and the report.

Peak memory is the largest resident set of the command's process (wait4's rusage).
Usage: python bench/simulate.py [--accounts N] [--events-per-day N] [--days N] [--workdir DIR]
       [--repeats N] [--reuse-loaded]
The workdir keeps the generated files (shared with bench/daily_run.py), so a second run skips
the generation.
"""

import argparse
from pathlib import Path

from daily_run import Site, timed  # bench/daily_run.py: the script's folder is on sys.path
from tenant import add_tenant_arguments, prepared_tenant

# the draft's change: profiles only, so the simulation reads the stored metrics as they are
PRODUCTION_RULE = '{metric: engagement_score, weight: 1, good: {op: ">=", value: 60}, poor: {op: "<", value: 10}}'
DRAFT_RULE = '{metric: engagement_score, weight: 1, good: {op: ">=", value: 50}, poor: {op: "<", value: 20}}'


def write_draft(site: Site) -> Path:
    """The site's config with the digital profile's engagement thresholds moved."""
    production = (site.folder / "cs_pipeline.yaml").read_text()
    if PRODUCTION_RULE not in production:
        raise SystemExit(f"the bundled config no longer has the rule the draft changes: {PRODUCTION_RULE}")
    draft = site.folder / "draft.yaml"
    draft.write_text(production.replace(PRODUCTION_RULE, DRAFT_RULE))
    return draft


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_tenant_arguments(parser, "bench/out/daily_run")
    parser.add_argument("--repeats", type=int, default=3, help="timed simulations")
    parser.add_argument(
        "--reuse-loaded", action="store_true", help="keep the loaded warehouse of an earlier run instead of loading it"
    )
    args = parser.parse_args()

    workdir, days = prepared_tenant(args)
    first, last = str(days[0]), str(days[-1])
    site = Site(workdir, "simulate")
    if not (args.reuse_loaded and site.folder.exists()):
        site.reset()
        print(f"loading {first}..{last} (not timed)", flush=True)
        timed(*site.cli("backfill", "--start", first, "--end", last))
    draft = write_draft(site)
    results = []
    for repeat in range(1, args.repeats + 1):
        seconds, peak = timed(*site.cli("simulate", "--draft", str(draft), "--start", first, "--end", last))
        results.append(f"simulate {first}..{last}, profiles only (#{repeat}): {seconds:.1f}s, peak RSS {peak:.2f} GiB")
    print(f"\n{args.accounts:,} accounts, {args.events_per_day:,} events a day, {args.days} days", flush=True)
    print("\n".join(results), flush=True)


if __name__ == "__main__":
    main()
