"""CRM assets: the daily snapshot of the source, the account dimension and users."""

from datetime import date

import dagster as dg
import duckdb
import polars as pl

from cs_pipeline import publish, schemas, tables
from cs_pipeline.assets_common.code_versions import code_version
from cs_pipeline.assets_common.declare import materialization
from cs_pipeline.assets_common.partitions import DomainContext
from cs_pipeline.assets_common.range_step import DailyAsset, Day, daily_asset
from cs_pipeline.config import PipelineConfig
from cs_pipeline.crm import versions
from cs_pipeline.crm.hierarchy import RAW_ACCOUNT_SCHEMA, RAW_ASSET_SCHEMA, Resolution, resolve_accounts
from cs_pipeline.crm.mapping import extract_snapshot, mapped_fields
from cs_pipeline.crm.salesforce_assets import build_salesforce_assets
from cs_pipeline.crm.sources import CrmSource, CrmSourceError
from cs_pipeline.lib.sql import same_columns
from cs_pipeline.transactions import transaction
from cs_pipeline.warehouse import query_frame, read_sql, set_variables


def build(context: DomainContext) -> list[dg.AssetsDefinition | DailyAsset]:
    """The daily CRM assets and, for `crm.source: salesforce`, the Salesforce mirror assets crm_snapshot reads."""
    extraction = build_salesforce_assets() if context.config.crm.source == "salesforce" else []
    return [*extraction, *build_crm_assets([asset.key for asset in extraction])]


def build_crm_assets(extracted: list[dg.AssetKey]) -> list[DailyAsset]:
    """extracted: the assets crm_snapshot reads through the crm resource (Salesforce mirrors).
    crm_snapshot's transient failures (a source briefly away) are retried by the daily step's retry policy."""
    crm_code = code_version(__name__)  # the assets' code version: a snapshot made by other code is made again

    @daily_asset(
        deps=extracted,
        group="crm",
        kinds={"salesforce"},
        description="What the CRM holds for day D, stored as D's snapshot (versions in "
        "crm_account_versions, crm_asset_versions, crm_contact_versions: an unchanged record adds "
        "nothing), mapped to canonical names: what Salesforce or the "
        "export files hold when D is materialised, or, when crm.files_dir holds dated exports "
        "(date=YYYY-MM-DD/ folders), the newest one dated on or before D (none: the oldest); "
        "metadata export_date names it. A day whose export files, mapping and code are those of the "
        "snapshot in force is recorded without reading them (metadata skipped_unchanged).",
    )
    def crm_snapshot(day: Day) -> dg.MaterializeResult:
        try:
            reading = day.resources.crm.as_of(day.date)
            if reading.warning:
                day.log.warning(reading.warning)
            with day.warehouse.connection() as con:
                stored = take_crm_snapshot(con, day.date, reading.source, day.config, day.run_id, crm_code)
                if stored.unchanged_since is not None:
                    day.log.info(
                        f"crm_snapshot {day.date}: the CRM source, mapping and code are those of snapshot date "
                        f"{stored.unchanged_since}: its rows recorded for {day.date} without reading the source"
                    )
                counts = _counts_in_force(con, CRM_COUNTS, day.date)
                return materialization(
                    con,
                    "crm_account_versions",
                    counts["accounts"],
                    {**reading.metadata, **counts, **stored.metadata()},
                    where="in_force(valid_from, valid_to, ?)",
                    params=[day.date],
                )
        except CrmSourceError as exc:  # a bad export file or a missing mirror: retrying fails the same way
            raise dg.Failure(str(exc), allow_retries=False) from None

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
            stored = resolve_account_snapshot(con, day.date, day.config, day.run_id, crm_code)
            if stored.unchanged_since is not None:
                day.log.info(
                    f"accounts {day.date}: the CRM snapshot, status catalog and code are those of snapshot date "
                    f"{stored.unchanged_since}: its account dimension recorded for {day.date} without resolving it"
                )
            [(current_rows,)] = con.execute("SELECT count(*) FROM accounts").fetchall()
            materialized = materialization(
                con,
                "accounts",
                current_rows,
                {**_dimension_counts(con, day.date), **stored.metadata()},
                version_table="account_versions",
                where="in_force(valid_from, valid_to, ?)",
                params=[day.date],
            )
            issues = con.execute(
                "SELECT issue, account_id, detail FROM hierarchy_issue_versions "
                "WHERE in_force(valid_from, valid_to, ?) AND issue != 'invalid_value' ORDER BY ALL LIMIT 20",
                [day.date],
            ).fetchall()
        for issue, account_id, detail in issues:
            day.log.warning(f"hierarchy issue {issue} for {account_id}: {detail}")
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


def take_crm_snapshot(
    con: duckdb.DuckDBPyConnection, day: date, source: CrmSource, config: PipelineConfig, run_id: str, code: str
) -> versions.SnapshotStored:
    """Stores what `source` holds as day's CRM snapshot (extract_snapshot's mapping, by code version
    `code`); when the fingerprint of the source's content, the mapping and the code is that of the
    snapshot date in force on day, records day as holding its rows without reading the source."""
    made_from = versions.fingerprint(
        source.content_digest(list(mapped_fields(config))), config.crm.mapping.model_dump(mode="json"), code
    )
    since = versions.unchanged_since(con, "crm_snapshot", day, made_from)
    if since is not None:
        with transaction(con):
            return versions.store_unchanged(con, "crm_snapshot", day, run_id, made_from, since)
    return store_crm_snapshot(con, day, extract_snapshot(source, config), run_id, made_from)


def store_crm_snapshot(
    con: duckdb.DuckDBPyConnection,
    day: date,
    frames: dict[str, pl.DataFrame],
    run_id: str,
    made_from: str | None = None,
) -> versions.SnapshotStored:
    """Stores the CRM records read for `day` (extract_snapshot's frames) as day's snapshot, made from
    what fingerprint `made_from` stands for (None: not known)."""
    with transaction(con):
        for name, frame in frames.items():
            con.register(name.replace("crm_", "snapshot_").replace("_raw", ""), frame.to_arrow())
        con.execute(read_sql("crm/store_snapshot.sql"))
        return versions.store_snapshots(con, "crm_snapshot", day, run_id, made_from)


def resolve_account_snapshot(
    con: duckdb.DuckDBPyConnection, day: date, config: PipelineConfig, run_id: str, code: str
) -> versions.SnapshotStored:
    """Resolves the CRM snapshot of `day` into day's account dimension (by code version `code`),
    stores it as day's snapshot and refreshes `accounts` and `hierarchy_issues` (the newest
    snapshot's). When the CRM snapshot's fingerprint, the config's status catalog and product
    separator and the code are those of the dimension in force on day, records day as holding
    its rows without resolving it."""
    crm = con.execute(
        "SELECT fingerprint FROM snapshot_dates WHERE asset = 'crm_snapshot' AND snapshot_date = ?", [day]
    ).fetchall()
    if not crm:
        raise _no_crm_snapshot(day)
    made_from = versions.fingerprint(crm[0][0], config.status_catalog(), config.crm.product_separator, code)
    since = versions.unchanged_since(con, "accounts", day, made_from)
    resolution = None if since is not None else _resolve(con, day, config)
    with transaction(con):
        if resolution is None:
            stored = versions.store_unchanged(con, "accounts", day, run_id, made_from, since)
        else:
            con.register("resolved_accounts", resolution.accounts.to_arrow())
            con.register("resolved_issues", resolution.issues.to_arrow())
            con.execute(read_sql("crm/store_account_snapshot.sql"))
            stored = versions.store_snapshots(con, "accounts", day, run_id, made_from)
        set_variables(con, run_id=run_id)
        con.execute(read_sql("crm/refresh_current_accounts.sql").format(differs=_account_differs()))
        publish.queue(con, "accounts")
        publish.queue(con, "hierarchy_issues")
    return stored


def _account_differs() -> str:
    """A condition true when the row `a` of accounts and `n`, its account's row now, differ (run_id aside)."""
    columns = tables.TABLES["accounts"].names()
    return f"NOT ({same_columns('a', 'n', columns)})"


def _resolve(con: duckdb.DuckDBPyConnection, day: date, config: PipelineConfig) -> Resolution:
    """The account dimension of the CRM snapshot of `day`, validated."""
    raw_accounts = query_frame(con, versions.rows_in_force("crm_account_versions"), [day])
    if raw_accounts.height == 0:
        raise _no_crm_snapshot(day)
    raw_assets = query_frame(con, versions.rows_in_force("crm_asset_versions"), [day])
    resolution = resolve_accounts(
        raw_accounts.cast(RAW_ACCOUNT_SCHEMA),
        raw_assets.cast(RAW_ASSET_SCHEMA),
        status_catalog=config.status_catalog(),
        product_separator=config.crm.product_separator,
    )
    schemas.validate(schemas.accounts, resolution.accounts)
    schemas.validate(schemas.hierarchy_issues, resolution.issues)
    return resolution


def _no_crm_snapshot(day: date) -> dg.Failure:
    return dg.Failure(
        f"no CRM snapshot for {day}: materialise crm_snapshot for partition {day} first", allow_retries=False
    )


def refresh_users(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Brings `users` up to date with the newest CRM snapshot's contacts and the event days
    changed since its last refresh (crm/sql/refresh_users.sql)."""
    set_variables(con, run_id=run_id)
    with transaction(con):  # the blocking check users_schema validates what was written
        con.execute(read_sql("crm/contact_users.sql"))
        con.execute(read_sql("crm/refresh_users.sql"))
        publish.queue(con, "users")


# crm_snapshot's counts: the records of its snapshot in force on the day, per versioned table
CRM_COUNTS = {"accounts": "crm_account_versions", "assets": "crm_asset_versions", "contacts": "crm_contact_versions"}


def _counts_in_force(con: duckdb.DuckDBPyConnection, counted: dict[str, str], day: date) -> dict[str, int]:
    """Per name, the rows of its versioned table in force on `day`."""
    counts = ", ".join(
        f"(SELECT count(*) FROM {table} WHERE in_force(valid_from, valid_to, $day))" for table in counted.values()
    )
    [found] = con.execute(f"SELECT {counts}", {"day": day}).fetchall()
    return dict(zip(counted, found, strict=True))


def _dimension_counts(con: duckdb.DuckDBPyConnection, day: date) -> dict[str, int]:
    """The accounts asset's own metadata: day's accounts by type and status group, the hierarchy
    issues by kind, the deepest level (from the versions in force on day, however they were stored)."""
    by_type = ", ".join(
        f"count(*) FILTER (WHERE account_type = '{t}') AS \"accounts_{t}\"" for t in schemas.ACCOUNT_TYPES[:2]
    )
    by_group = ", ".join(
        f"count(*) FILTER (WHERE status_group = '{g}') AS \"status_{g.lower()}\"" for g in schemas.STATUS_GROUPS
    )
    by_kind = ", ".join(f"count(*) FILTER (WHERE issue = '{k}') AS \"issues_{k}\"" for k in schemas.ISSUE_KINDS)
    [dimension] = query_frame(
        con,
        f"SELECT count(*) AS snapshot_accounts, {by_type}, {by_group}, coalesce(max(depth), 0) AS max_depth "
        "FROM account_versions WHERE in_force(valid_from, valid_to, ?)",
        [day],
    ).to_dicts()
    [issues] = query_frame(
        con,
        f"SELECT count(*) AS hierarchy_issues, {by_kind} FROM hierarchy_issue_versions "
        "WHERE in_force(valid_from, valid_to, ?)",
        [day],
    ).to_dicts()
    max_depth = dimension.pop("max_depth")
    return {k: int(v) for k, v in {**dimension, **issues, "max_depth": max_depth}.items()}
