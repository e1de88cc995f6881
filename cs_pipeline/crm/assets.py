"""CRM assets: the daily snapshot of the source, the account dimension and users."""

from datetime import date

import dagster as dg
import duckdb
import polars as pl

from cs_pipeline import publish, schemas
from cs_pipeline.assets_common.declare import materialization
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyAsset, Day, daily_asset
from cs_pipeline.config import PipelineConfig
from cs_pipeline.crm import versions
from cs_pipeline.crm.hierarchy import RAW_ACCOUNT_SCHEMA, RAW_ASSET_SCHEMA, Resolution, resolve_accounts
from cs_pipeline.crm.mapping import extract_snapshot
from cs_pipeline.crm.salesforce_assets import build_salesforce_assets
from cs_pipeline.crm.sources import CrmSourceError
from cs_pipeline.transactions import transaction
from cs_pipeline.warehouse import query_frame, read_sql, set_variables


def build(context: DomainContext) -> list[dg.AssetsDefinition | DailyAsset]:
    """The daily CRM assets and, for `crm.source: salesforce`, the Salesforce mirror assets crm_snapshot reads."""
    extraction = build_salesforce_assets() if context.config.crm.source == "salesforce" else []
    return [*extraction, *build_crm_assets([asset.key for asset in extraction])]


def build_crm_assets(extracted: list[dg.AssetKey]) -> list[DailyAsset]:
    """extracted: the assets crm_snapshot reads through the crm resource (Salesforce mirrors).
    crm_snapshot's transient failures (a source briefly away) are retried by the daily step's retry policy."""

    @daily_asset(
        deps=extracted,
        group="crm",
        kinds={"salesforce"},
        description="What the CRM holds for day D, stored as D's snapshot (versions in "
        "crm_account_versions, crm_asset_versions, crm_contact_versions: an unchanged record adds "
        "nothing), mapped to canonical names: what Salesforce or the "
        "export files hold when D is materialised, or, when crm.files_dir holds dated exports "
        "(date=YYYY-MM-DD/ folders), the newest one dated on or before D (none: the oldest); "
        "metadata export_date names it.",
    )
    def crm_snapshot(day: Day) -> dg.MaterializeResult:
        try:
            reading = day.resources.crm.as_of(day.date)
            if reading.warning:
                day.log.warning(reading.warning)
            frames = extract_snapshot(reading.source, day.config)
        except CrmSourceError as exc:  # a bad export file or a missing mirror: retrying fails the same way
            raise dg.Failure(str(exc), allow_retries=False) from None
        with day.warehouse.connection() as con:
            writes = store_crm_snapshot(con, day.date, frames, day.run_id)
            return materialization(
                con,
                "crm_account_versions",
                frames["crm_accounts_raw"].height,
                {
                    **reading.metadata,
                    "accounts": frames["crm_accounts_raw"].height,
                    "assets": frames["crm_assets_raw"].height,
                    "contacts": frames["crm_contacts_raw"].height,
                    **versions.version_counts(writes),
                },
                where="in_force(valid_from, valid_to, ?)",
                params=[day.date],
            )

    @daily_asset(
        group="crm",
        kinds={"polars"},
        deps=["crm_snapshot", "usage_events"],
        description="The account dimension: CRM accounts and virtual product accounts with "
        "root_id, depth, path and status group (account_versions for D; `accounts` and "
        "`hierarchy_issues` show the newest snapshot, plus IDs seen only in events).",
    )
    def accounts(day: Day) -> dg.MaterializeResult:
        with day.warehouse.connection() as con:
            resolution, writes = resolve_account_snapshot(con, day.date, day.config, day.run_id)
            [(current_rows,)] = con.execute("SELECT count(*) FROM accounts").fetchall()
            materialized = materialization(
                con,
                "accounts",
                current_rows,
                {**_resolution_counts(resolution), **versions.version_counts(writes)},
                version_table="account_versions",
                where="in_force(valid_from, valid_to, ?)",
                params=[day.date],
            )
        for issue in resolution.issues.filter(pl.col("issue") != "invalid_value").head(20).iter_rows(named=True):
            day.log.warning(f"hierarchy issue {issue['issue']} for {issue['account_id']}: {issue['detail']}")
        return materialized

    @daily_asset(
        group="crm",
        deps=["crm_snapshot", "accounts", "usage_events"],
        description="Users per account: contacts of the newest CRM snapshot and every user seen "
        "in usage events, with first_seen / last_seen.",
    )
    def users(day: Day) -> dg.MaterializeResult:
        with day.warehouse.connection() as con:
            refresh_users(con, day.run_id)
            [(rows, from_contacts, seen_in_events)] = con.execute(
                "SELECT count(*), count(name), count(first_seen) FROM users"
            ).fetchall()
            return materialization(
                con, "users", rows, {"users_from_contacts": from_contacts, "users_seen_in_events": seen_in_events}
            )

    return [crm_snapshot, accounts, users]


def store_crm_snapshot(
    con: duckdb.DuckDBPyConnection, day: date, frames: dict[str, pl.DataFrame], run_id: str
) -> dict[str, versions.VersionWrites]:
    """Stores the CRM records read for `day` (extract_snapshot's frames) as day's snapshot."""
    with transaction(con):
        for name, frame in frames.items():
            con.register(name.replace("crm_", "snapshot_").replace("_raw", ""), frame.to_arrow())
        con.execute(read_sql("crm/store_snapshot.sql"))
        return versions.store_snapshots(con, "crm_snapshot", day, run_id)


def resolve_account_snapshot(
    con: duckdb.DuckDBPyConnection, day: date, config: PipelineConfig, run_id: str
) -> tuple[Resolution, dict[str, versions.VersionWrites]]:
    """Resolves the CRM snapshot of `day` into day's account dimension, stores it as day's
    snapshot and refreshes `accounts` and `hierarchy_issues` (the newest snapshot's)."""
    [(stored,)] = con.execute(
        "SELECT count(*) FROM snapshot_dates WHERE asset = 'crm_snapshot' AND snapshot_date = ?", [day]
    ).fetchall()
    raw_accounts = query_frame(con, versions.rows_in_force("crm_account_versions"), [day])
    if not stored or raw_accounts.height == 0:
        raise dg.Failure(
            f"no CRM snapshot for {day}: materialise crm_snapshot for partition {day} first", allow_retries=False
        )
    raw_assets = query_frame(con, versions.rows_in_force("crm_asset_versions"), [day])
    resolution = resolve_accounts(
        raw_accounts.cast(RAW_ACCOUNT_SCHEMA),
        raw_assets.cast(RAW_ASSET_SCHEMA),
        status_catalog=config.status_catalog(),
        product_separator=config.crm.product_separator,
    )
    schemas.validate(schemas.accounts, resolution.accounts)
    schemas.validate(schemas.hierarchy_issues, resolution.issues)
    with transaction(con):
        con.register("resolved_accounts", resolution.accounts.to_arrow())
        con.register("resolved_issues", resolution.issues.to_arrow())
        con.execute(read_sql("crm/store_account_snapshot.sql"))
        writes = versions.store_snapshots(con, "accounts", day, run_id)
        set_variables(con, run_id=run_id)
        con.execute(read_sql("crm/refresh_current_accounts.sql"))
        publish.queue(con, "accounts")
        publish.queue(con, "hierarchy_issues")
    return resolution, writes


def refresh_users(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Brings `users` up to date with the newest CRM snapshot's contacts and the event days
    changed since its last refresh (crm/sql/refresh_users.sql)."""
    set_variables(con, run_id=run_id)
    with transaction(con):  # the blocking check users_schema validates what was written
        con.execute(read_sql("crm/contact_users.sql"))
        con.execute(read_sql("crm/refresh_users.sql"))
        publish.queue(con, "users")


def _resolution_counts(resolution: Resolution) -> dict[str, int]:
    """The accounts asset's own metadata: D's accounts by type and status group, the hierarchy issues by kind."""
    counts = resolution.accounts.group_by("account_type").len()
    groups = resolution.accounts.group_by("status_group").len()
    issue_counts = resolution.issues.group_by("issue").len()
    return {
        "snapshot_accounts": resolution.accounts.height,
        **{f"accounts_{t}": _count(counts, "account_type", t) for t in schemas.ACCOUNT_TYPES[:2]},
        **{f"status_{g.lower()}": _count(groups, "status_group", g) for g in schemas.STATUS_GROUPS},
        "hierarchy_issues": resolution.issues.height,
        **{f"issues_{k}": _count(issue_counts, "issue", k) for k in schemas.ISSUE_KINDS},
        "max_depth": int(resolution.accounts["depth"].max() or 0),
    }


def _count(counts: pl.DataFrame, column: str, value: str) -> int:
    return int(counts.filter(pl.col(column) == value)["len"].sum())
