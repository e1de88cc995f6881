"""`cs-pipeline`: run the pipeline through the Dagster instance, so every run is in the UI.

cs-pipeline demo                           synthetic tenant, 60 days end to end
cs-pipeline demo --crm salesforce          the same, its CRM read from a local Salesforce server
cs-pipeline materialize --date D           every asset for day D
cs-pipeline backfill --start D1 --end D2   every asset for each day of the range, in three runs
cs-pipeline backtest [--start D1 --end D2] [--horizon H]
                                           the health lab's backtest of the warehouse's health
cs-pipeline simulate --draft FILE [--start D1 --end D2] [--horizon H]
                                           a draft config rescored on history, compared with production
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import dagster as dg

from cs_pipeline import publish, runs, stopping
from cs_pipeline.assets_common.jobs import (
    DAILY_JOB,
    HEALTH_JOB,
    LAB_JOB,
    RANGE_END_TAG,
    RANGE_START_TAG,
    SUBACCOUNT_JOB,
)
from cs_pipeline.assets_common.settings import audit_tags
from cs_pipeline.config import ConfigError, PipelineConfig, default_config_path, load_config
from cs_pipeline.warehouse import DUCKDB_POOL, EXAMPLES_DIR, WarehouseLocked, held_open

# The Dagster instance cs-pipeline creates in $DAGSTER_HOME on first use: SQLite storage
# there. Events go to one SQLite database (ConsolidatedSqliteEventLogStorage) rather than one
# per run plus an index, so a run no longer creates and migrates a database of its own:
# about 0.4 s less per day of runs. Paths come from $DAGSTER_HOME, so the folder can move.
EMBEDDED_INSTANCE_YAML = """\
# Embedded Dagster instance created by cs-pipeline on first use: SQLite storage in this
# folder ($DAGSTER_HOME). The production instance is the project's top-level dagster.yaml.
run_storage:
  module: dagster._core.storage.runs
  class: SqliteRunStorage
  config: {base_dir: {env: DAGSTER_HOME}}
event_log_storage:
  module: cs_pipeline.event_log
  class: PooledSqliteEventLogStorage
  config: {base_dir: {env: DAGSTER_HOME}}
schedule_storage:
  module: dagster._core.storage.schedules
  class: SqliteScheduleStorage
  config: {base_dir: {env: DAGSTER_HOME}}
concurrency:
  pools:
    default_limit: 1  # the DuckDB warehouse admits one writing process
# runs launched from the UI (make ui): a dead run worker fails its run, ended runs free
# their pool slots (cs-pipeline itself fails the runs of its own dead processes)
run_launcher:
  module: cs_pipeline.runs
  class: MonitoredRunLauncher
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
  start_timeout_seconds: 180
  max_runtime_seconds: 3600
  max_resume_run_attempts: 0
  free_slots_after_run_end_seconds: 60
telemetry:
  enabled: false
"""


class CliError(Exception):
    """A problem the user can fix; printed without a stack trace."""


# The event log of the embedded instances cs-pipeline made before cs_pipeline/event_log.py: the
# same database and tables, so dagster_instance switches such an instance to the pooled storage.
EARLIER_EVENT_LOG = "  module: dagster._core.storage.event_log\n  class: ConsolidatedSqliteEventLogStorage\n"
POOLED_EVENT_LOG = "  module: cs_pipeline.event_log\n  class: PooledSqliteEventLogStorage\n"


def dagster_instance() -> dg.DagsterInstance:
    """$DAGSTER_HOME if set, else ./.dagster_home (SQLite), created on first use; an embedded
    instance cs-pipeline made before its pooled event log is switched to it."""
    if not os.environ.get("DAGSTER_HOME"):
        home = Path(".dagster_home").resolve()
        os.environ["DAGSTER_HOME"] = str(home)
    home = Path(os.environ["DAGSTER_HOME"])
    # Dagster itself (the UI, the daemon) refuses a relative one: the same folder must work for both
    if not home.is_absolute():
        raise CliError(f"DAGSTER_HOME must be an absolute path, got {str(home)!r}: try {str(home.resolve())!r}")
    if home.exists() and not home.is_dir():
        raise CliError(f"DAGSTER_HOME {str(home)!r} is a file, not a folder")
    home.mkdir(parents=True, exist_ok=True)
    instance_yaml = home / "dagster.yaml"
    if not instance_yaml.exists():
        instance_yaml.write_text(EMBEDDED_INSTANCE_YAML)
    elif (made := instance_yaml.read_text()).startswith(EMBEDDED_INSTANCE_YAML.split("\n", 1)[0]) and (
        EARLIER_EVENT_LOG in made
    ):
        instance_yaml.write_text(made.replace(EARLIER_EVENT_LOG, POOLED_EVENT_LOG))
    return dg.DagsterInstance.get()


def yesterday() -> date:
    """The last UTC day that is over: the default day to process."""
    return datetime.now(timezone.utc).date() - timedelta(days=1)


def days_between(start: date, end: date) -> list[date]:
    """Every day from `start` to `end`, both included; a CliError when `end` comes first."""
    if end < start:
        raise CliError(f"--end {end} is before --start {start}")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def run_days(config: PipelineConfig, days: list[date], instance: dg.DagsterInstance, *, verbose: bool = False) -> None:
    """The days (consecutive, oldest first) in three range runs: the daily job for every day,
    the health job for every day and profile, the subaccount health job for every day; then a
    line per day. First, runs of this instance left unfinished by a process that is gone are
    marked failed and their pool slots freed."""
    from cs_pipeline.definitions import build_definitions

    defs = build_definitions(config)
    daily_job, health_job = defs.resolve_job_def(DAILY_JOB), defs.resolve_job_def(HEALTH_JOB)
    subaccount_job = defs.resolve_job_def(SUBACCOUNT_JOB)
    valid = set(daily_job.partitions_def.get_partition_keys())
    for day in days:
        if day.isoformat() not in valid:
            raise CliError(
                f"{day} is not a daily partition: they run from {config.start_date} (config start_date) "
                f"to yesterday ({yesterday()})"
            )
    _fail_runs_of_gone_processes(instance)
    runner = _Runner(config, instance, verbose)
    started = time.monotonic()
    first, last, profiles = days[0].isoformat(), days[-1].isoformat(), config.profile_names()
    span = first if first == last else f"{first}..{last}"
    with ExitStack() as stack:
        # one open warehouse for all the runs (held_open): each step's close would checkpoint
        _hold_warehouse(stack, config)
        daily = runner.execute(daily_job, (first, last), what=f"the daily assets of {span}")
        health = runner.execute(
            health_job, (f"{first}|{profiles[0]}", f"{last}|{profiles[-1]}"), what=f"the health of {span}"
        )
        runner.execute(subaccount_job, (first, last), what=f"the subaccount health of {span}")
        for number, day in enumerate(days, start=1):
            print(f"[{number}/{len(days)}] {day}: {_day_summary(day.isoformat(), daily, health)}", flush=True)
    print(f"{len(days)} day(s) in {time.monotonic() - started:.1f}s; warehouse: {config.warehouse}", flush=True)


def _fail_runs_of_gone_processes(instance: dg.DagsterInstance) -> None:
    """Mark the runs of this host whose process is gone as failed, free their pool slots, say so."""
    if failed := runs.fail_runs_of_gone_processes(instance):
        say(
            f"marked {len(failed)} run(s) left unfinished by a process that is gone as failed and freed their "
            f"pool slots: {', '.join(map(str, failed))}"
        )


def _day_summary(day: str, daily: dg.ExecuteInProcessResult, health: dg.ExecuteInProcessResult) -> str:
    """A day's line: Good / Average / Poor / No value over its profiles, rejected rows, hierarchy issues."""
    from cs_pipeline.health.account_health import HEALTH_COUNT_KEYS

    counts: Counter[str] = Counter()
    for metadata in _partition_metadata(health, "account_health", lambda key: key.split("|")[0] == day):
        counts.update({key: metadata[key] for key in HEALTH_COUNT_KEYS.values()})
    daily_counts: Counter[str] = Counter()
    for asset, key in (("usage_events", "rows_rejected"), ("accounts", "hierarchy_issues")):
        for metadata in _partition_metadata(daily, asset, lambda partition: partition == day):
            daily_counts[key] += metadata[key]
    health_line = ", ".join(f"{counts[key]} {label.lower()}" for label, key in HEALTH_COUNT_KEYS.items())
    return (
        f"{health_line}; {daily_counts['rows_rejected']} rows rejected, "
        f"{daily_counts['hierarchy_issues']} hierarchy issues"
    )


def _partition_metadata(
    result: dg.ExecuteInProcessResult, asset: str, partitions: Callable[[str], bool]
) -> Iterator[dict[str, object]]:
    """The metadata values of `asset`'s materialisations in a run, for the partitions chosen."""
    for event in result.get_asset_materialization_events():
        materialization = event.materialization
        if materialization.asset_key.to_user_string() == asset and partitions(materialization.partition or ""):
            yield {key: value.value for key, value in materialization.metadata.items()}


def say(message: str) -> None:
    """A line on stderr from the CLI itself (waits, repairs), between the progress lines."""
    print(f"cs-pipeline: {message}", file=sys.stderr, flush=True)


def _hold_warehouse(stack: ExitStack, config: PipelineConfig) -> None:
    """held_open for the rest of `stack`, its failures to open said as the user can act on them."""
    hold = held_open(
        config.warehouse,
        lock_timeout=config.timeouts.warehouse_lock_seconds,
        say=say,
        analysts_folder=config.published,
    )
    try:
        stack.enter_context(hold)
    except WarehouseLocked as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"{config.source_path}: warehouse: cannot open {config.warehouse}: {exc}") from None


class _Runner:
    """Executes the CLI's runs in this process, each once the `duckdb` pool has room, tagged
    for audit and with this host (so a later command can tell when its process is gone)."""

    def __init__(self, config: PipelineConfig, instance: dg.DagsterInstance, verbose: bool):
        self.config, self.instance = config, instance
        self.tags = {**audit_tags(config), runs.HOST_TAG: runs.this_host(), runs.PID_TAG: str(os.getpid())}
        # the progress lines are the CLI's voice; --verbose adds Dagster's log (stack traces included)
        self.run_config = {"loggers": {"console": {"config": {"log_level": "INFO" if verbose else "CRITICAL"}}}}

    def execute(
        self, job: dg.JobDefinition, partitions: tuple[str, str] | None, *, what: str, ops: dict | None = None
    ) -> dg.ExecuteInProcessResult:
        """One run of `job` over the partition keys from partitions[0] to partitions[1] (None: an
        unpartitioned job), `ops` its ops' run config."""
        timeout = self.config.timeouts.pool_seconds
        try:
            runs.wait_for_pool(self.instance, DUCKDB_POOL, timeout=timeout, say=say)
        except runs.PoolTimeout as exc:
            raise CliError(f"{job.name} for {what} did not start: {exc}") from None
        started = time.monotonic()
        run_id = str(uuid.uuid4())
        with (
            stopping.executing(self.instance, run_id, what),
            runs.pool_watchdog(self.instance, run_id, DUCKDB_POOL, timeout=timeout, what=f"{job.name} for {what}"),
        ):
            result = job.execute_in_process(
                instance=self.instance,
                raise_on_error=False,
                run_id=run_id,
                tags={**self.tags, **_range_tags(partitions)},
                run_config={**self.run_config, **({"ops": ops} if ops else {})},
            )
        if not result.success:
            raise CliError(f"run {result.run_id} ({job.name}) for {what} failed:\n{_failure_summary(result)}")
        print(f"{what}: done in {time.monotonic() - started:.1f}s ({job.name} run {run_id[:8]})", flush=True)
        return result


def _range_tags(partitions: tuple[str, str] | None) -> dict[str, str]:
    """The tags of a run over the partition keys from partitions[0] to partitions[1]; none for None."""
    return {RANGE_START_TAG: partitions[0], RANGE_END_TAG: partitions[1]} if partitions else {}


def _failure_summary(result: dg.ExecuteInProcessResult) -> str:
    lines = []
    for event in result.all_events:
        if event.event_type_value in ("STEP_FAILURE", "ASSET_CHECK_EVALUATION") and event.is_failure:
            error = event.step_failure_data.error if event.step_failure_data else None
            # Dagster wraps the asset's own exception: its message is the one to show
            error = (error.cause or error) if error else None
            message = error.message.strip() if error else event.message
            lines.append(f"  {event.step_key}: {message}")
    return "\n".join(lines) or "  (see the run in the Dagster UI)"


def run_lab(
    config: PipelineConfig,
    instance: dg.DagsterInstance,
    *,
    start: date | None = None,
    end: date | None = None,
    horizon: int | None = None,
    verbose: bool = False,
) -> None:
    """Materialise the health lab's backtest (docs/health-lab.md) in a run of its job, then print
    its summary and the report's path."""
    from cs_pipeline.definitions import build_definitions

    lab_job = build_definitions(config).resolve_job_def(LAB_JOB)
    _fail_runs_of_gone_processes(instance)
    chosen = {"start": start and start.isoformat(), "end": end and end.isoformat(), "horizon": horizon}
    result = _Runner(config, instance, verbose).execute(
        lab_job,
        None,
        what="the backtest",
        ops={"health_backtest": {"config": {key: value for key, value in chosen.items() if value is not None}}},
    )
    [materialization] = [event.materialization for event in result.get_asset_materialization_events()]
    print(materialization.metadata["summary_text"].value, flush=True)
    if (
        "scored_observable_days" in materialization.metadata
        and not materialization.metadata["scored_observable_days"].value
    ):
        say(
            "no scored day is observable: the status history ends less than the horizon after the first day; "
            "a shorter --horizon (or more history) gives figures"
        )


def check_lab_options(args: argparse.Namespace) -> None:
    """--start, --end and --horizon of the health lab's commands, refused before the instance is touched."""
    if args.start is not None and args.end is not None and args.end < args.start:
        raise CliError(f"--end {args.end} is before --start {args.start}")
    if args.horizon < 1:
        raise CliError(f"--horizon {args.horizon}: the horizon is a number of days, at least 1")


def cmd_backtest(args: argparse.Namespace) -> None:
    """`cs-pipeline backtest`: the health lab's backtest of the warehouse's health."""
    check_lab_options(args)
    config = load_config(args.config)
    run_lab(config, dagster_instance(), start=args.start, end=args.end, horizon=args.horizon, verbose=args.verbose)


def cmd_materialize(args: argparse.Namespace) -> None:
    """`cs-pipeline materialize`: run the pipeline for one day."""
    config = load_config(args.config)
    run_days(config, [args.date], dagster_instance(), verbose=args.verbose)


def cmd_backfill(args: argparse.Namespace) -> None:
    """`cs-pipeline backfill`: run the pipeline for each day of a range, in order (three range runs)."""
    config = load_config(args.config)
    run_days(config, days_between(args.start, args.end), dagster_instance(), verbose=args.verbose)


def cmd_simulate(args: argparse.Namespace) -> None:
    """`cs-pipeline simulate`: the simulate_draft job for a draft config, through the Dagster instance."""
    from cs_pipeline.definitions import build_definitions
    from cs_pipeline.lab.simulate_job import SIMULATE_JOB, SIMULATE_OP, SUMMARY_KEY

    check_lab_options(args)
    config = load_config(args.config)
    load_config(args.draft)  # a bad draft is said here, naming its file and key, before any run
    job = build_definitions(config).resolve_job_def(SIMULATE_JOB)
    instance = dagster_instance()
    op_config = {"draft": str(Path(args.draft).resolve()), "horizon": args.horizon}
    op_config |= {key: getattr(args, key).isoformat() for key in ("start", "end") if getattr(args, key)}
    run_id = str(uuid.uuid4())
    with stopping.executing(instance, run_id, "the simulation"):
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_id=run_id,
            tags={**audit_tags(config), runs.HOST_TAG: runs.this_host(), runs.PID_TAG: str(os.getpid())},
            run_config={
                "ops": {SIMULATE_OP: {"config": op_config}},
                "loggers": {"console": {"config": {"log_level": "INFO" if args.verbose else "CRITICAL"}}},
            },
        )
    if not result.success:
        raise CliError(f"run {result.run_id} ({SIMULATE_JOB}) failed:\n{_failure_summary(result)}")
    for event in result.all_events:
        if event.event_type_value == "STEP_OUTPUT":
            print(event.event_specific_data.metadata[SUMMARY_KEY].value, flush=True)


def cmd_demo(args: argparse.Namespace) -> None:
    """`cs-pipeline demo`: generate the demo tenant's data, then run the pipeline over its days."""
    from cs_pipeline.demo.generator import generate_tenant

    config = load_config(default_config_path() if args.config is None else args.config)
    tenant_dir = config.source_path.parent
    if config.crm.files_dir != tenant_dir / "crm" or config.landing != tenant_dir / "landing":
        raise CliError(
            f"the demo writes its tenant beside {config.source_path}: "
            "its crm.files_dir must be crm/ and landing landing/"
        )
    end = yesterday()
    print(f"generating the demo tenant ({args.days} days to {end}) in {tenant_dir} ...", flush=True)
    summary = generate_tenant(tenant_dir, end_date=end, days=args.days, progress=None)
    print(
        f"  {summary.accounts} accounts, {summary.assets} product holdings, {summary.contacts} contacts, "
        f"{summary.events_written} events ({summary.bad_rows_written} bad rows on purpose)",
        flush=True,
    )
    instance = dagster_instance()
    if args.crm == "salesforce":
        with local_salesforce(config.source_path, summary.latest_crm_export) as salesforce_config:
            run_days(load_config(salesforce_config), summary.days, instance, verbose=args.verbose)
    else:
        run_days(config, summary.days, instance, verbose=args.verbose)
    analytics = config.published / publish.DATABASE_NAME
    print(
        f"\nWarehouse (the pipeline's own; do not open it while it runs): {config.warehouse}\n"
        f"Published for analysts (Parquet, and views over it): {config.published}\n"
        f"Dagster instance: {os.environ['DAGSTER_HOME']}\n"
        f"Open the UI with: make ui (or DAGSTER_HOME={os.environ['DAGSTER_HOME']} dagster dev -w workspace.yaml)\n"
        f"Query it with: duckdb -readonly {analytics}   (example queries in {EXAMPLES_DIR})",
        flush=True,
    )
    show_examples(analytics)
    print(flush=True)
    # the demo's history is shorter than the default horizon of 90 days: half of it leaves days to observe
    run_lab(config, instance, horizon=max(1, args.days // 2), verbose=args.verbose)


@contextmanager
def local_salesforce(demo_config: Path, crm_dir: Path) -> Iterator[Path]:
    """The demo's CRM export served by the local Salesforce-compatible server; yields a copy
    of the demo config with crm.source: salesforce, and points the SF_* variables at the
    server (its throwaway credentials) for this process."""
    import yaml

    try:
        from cs_pipeline_testing.salesforce_server.local_server import LocalSalesforceServer
    except ImportError as exc:  # trustme, the server's own dependency, is an optional extra
        raise SystemExit(
            f"--crm salesforce needs the local Salesforce server's dependencies ({exc.name} is missing): "
            "pip install 'cs_pipeline[salesforce-server]'"
        ) from exc

    data = yaml.safe_load(demo_config.read_text())
    data["crm"]["source"] = "salesforce"
    salesforce_config = demo_config.with_name("cs_pipeline.salesforce.yaml")
    salesforce_config.write_text(yaml.safe_dump(data, sort_keys=False))
    with LocalSalesforceServer() as server:
        loaded = server.store.load_csv_exports(crm_dir)
        os.environ.update(
            SF_USERNAME=server.username,
            SF_PASSWORD=server.password,
            SF_SECURITY_TOKEN=server.security_token,
            SF_CA_BUNDLE=server.ca_path,
            SF_PROXY=server.proxy_url,
        )
        records = ", ".join(f"{count} {name}" for name, count in loaded.items())
        print(f"  local Salesforce at {server.instance_url} (login through {server.proxy_url}): {records}", flush=True)
        yield salesforce_config


def show_examples(analytics: Path) -> None:
    """Run the example queries of sql/examples/ on the published layer (analytics.duckdb, as an
    analyst would) and print them with their results."""
    import duckdb

    with duckdb.connect(str(analytics), read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        for path in sorted(EXAMPLES_DIR.glob("*.sql")):
            query = path.read_text()
            print(f"\n-- {path.relative_to(EXAMPLES_DIR.parents[1])}\n{query.strip()}", flush=True)
            print(con.sql(query), flush=True)


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def main(argv: list[str] | None = None) -> int:
    """The `cs-pipeline` command: parse `argv`, run the subcommand; returns the exit status."""
    parser = argparse.ArgumentParser(prog="cs-pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", help="the pipeline YAML (default: $CS_PIPELINE_CONFIG, else the bundled demo config)"
    )
    parser.add_argument(
        "--verbose", action="store_true", help="print Dagster's log of each run (stack traces of failures included)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="generate the demo tenant and run it end to end")
    demo.add_argument("--days", type=int, default=60)
    demo.add_argument(
        "--crm",
        choices=["files", "salesforce"],
        default="files",
        help="read the CRM from the CSV export (default) or from that export served by a local "
        "Salesforce-compatible server through simple-salesforce",
    )
    demo.set_defaults(handler=cmd_demo)
    materialize = commands.add_parser("materialize", help="every asset for one day")
    materialize.add_argument("--date", type=_date, required=True)
    materialize.set_defaults(handler=cmd_materialize)
    backfill = commands.add_parser("backfill", help="every asset for each day of a range")
    backfill.add_argument("--start", type=_date, required=True)
    backfill.add_argument("--end", type=_date, required=True)
    backfill.set_defaults(handler=cmd_backfill)
    backtest = commands.add_parser(
        "backtest", help="the health lab: did the health of each day foretell the churns of the horizon after it"
    )
    backtest.add_argument("--start", type=_date, help="the first day (default: the first day of account_health)")
    backtest.add_argument("--end", type=_date, help="the last day (default: the last day of account_health)")
    backtest.add_argument("--horizon", type=int, default=90, help="days after each day a churn counts (default 90)")
    backtest.set_defaults(handler=cmd_backtest)
    simulate = commands.add_parser(
        "simulate", help="rescore production's history with a draft config and compare (nothing else is written)"
    )
    simulate.add_argument("--draft", required=True, help="the draft config file (a whole config)")
    simulate.add_argument("--start", type=_date, help="the first day (default: production's first day of health)")
    simulate.add_argument("--end", type=_date, help="the last day (default: production's last day of health)")
    simulate.add_argument("--horizon", type=int, default=90, help="the backtest's horizon in days (default 90)")
    simulate.set_defaults(handler=cmd_simulate)
    args = parser.parse_args(argv)
    # SIGTERM and Ctrl-C stop the command within seconds, with one line and status 128 + signal
    with stopping.signals_stop_the_command():
        try:
            args.handler(args)
        except BaseException as exc:
            if (signum := stopping.requested()) is not None:
                print(f"cs-pipeline: {stopping.describe()}", file=sys.stderr, flush=True)
                return stopping.exit_status(signum)
            if isinstance(exc, (CliError, ConfigError)):
                print(f"cs-pipeline: {exc}", file=sys.stderr)
                return 1
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
