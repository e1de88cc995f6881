"""The account dimension of one CRM snapshot, as pure Polars transforms
(docs/data-model.md#account-hierarchy-and-product-accounts, docs/lifecycle.md#status-catalog).

Input: the snapshot's canonical records as text (`crm_account_versions`, `crm_asset_versions`).
Output: one row per account — CRM accounts and virtual product accounts — with its
hierarchy (root_id, depth, path) and status group, plus every problem found, each cut and
reported as an issue row rather than silently repaired. Loops run over hierarchy levels,
never over rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from cs_pipeline.tables import TABLES
from cs_pipeline.vocabulary import UNKNOWN_STATUS_GROUP

ACCOUNT_COLUMNS = TABLES["accounts"].names()
ISSUE_SCHEMA = {"account_id": pl.String, "issue": pl.String, "detail": pl.String}
ATTRIBUTES_TYPE = pl.List(pl.Struct({"key": pl.String, "value": pl.String}))
RAW_ACCOUNT_SCHEMA = {
    "salesforce_id": pl.String, "account_id": pl.String, "name": pl.String,
    "parent_salesforce_id": pl.String, "status": pl.String, "create_date": pl.String,
    "contract_value": pl.String, "renewal_date": pl.String, "licenses": pl.String,
    "attributes": ATTRIBUTES_TYPE, "system_modstamp": pl.String,
}  # fmt: skip
RAW_ASSET_SCHEMA = {
    "salesforce_id": pl.String, "account_salesforce_id": pl.String, "product_code": pl.String,
    "product_name": pl.String, "status": pl.String, "licenses": pl.String,
    "contract_value": pl.String, "create_date": pl.String, "system_modstamp": pl.String,
}  # fmt: skip


@dataclass(frozen=True)
class Resolution:
    """The resolved account dimension of a snapshot, and the hierarchy issues found on the way."""
    accounts: pl.DataFrame
    issues: pl.DataFrame


def resolve_accounts(
    accounts_raw: pl.DataFrame,
    assets_raw: pl.DataFrame,
    *,
    status_catalog: list[tuple[str, str]],
    product_separator: str,
) -> Resolution:
    """The account dimension of a CRM snapshot: accounts and product accounts with root, depth, path and status
    group."""
    issues: list[pl.DataFrame] = []
    accounts_raw = accounts_raw.select(pl.col(c).cast(t) for c, t in RAW_ACCOUNT_SCHEMA.items())
    assets_raw = assets_raw.select(pl.col(c).cast(t) for c, t in RAW_ASSET_SCHEMA.items())
    accounts = _typed_accounts(accounts_raw, issues)
    id_of_salesforce_id = accounts.select("salesforce_id", "account_id").unique("salesforce_id")
    accounts = _keep_latest(accounts, issues)
    accounts = _link_parents(accounts, id_of_salesforce_id, issues)
    products = _product_accounts(assets_raw, accounts, id_of_salesforce_id, product_separator, issues)
    nodes = _keep_latest(pl.concat([accounts, products], how="vertical"), issues)
    placed = _place_cutting_cycles(nodes, issues)
    with_status = _apply_status_catalog(placed, status_catalog)
    all_issues = pl.concat([pl.DataFrame(schema=ISSUE_SCHEMA), *issues], how="vertical")
    return Resolution(
        accounts=with_status.select(ACCOUNT_COLUMNS).sort("account_id"),
        issues=all_issues.sort("issue", "account_id", "detail", nulls_last=True),
    )


# --- parsing -------------------------------------------------------------------------


def _parse_date(column: str) -> pl.Expr:
    """A date, or a Salesforce datetime (`2025-11-21T08:15:00.000+0000`) taken as its UTC date."""
    text = pl.col(column)
    as_datetime = pl.coalesce(
        text.str.to_datetime(format, strict=False, time_zone="UTC")
        for format in ("%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S%.fZ", "%Y-%m-%dT%H:%M:%SZ")
    )
    return pl.coalesce(text.str.to_date("%Y-%m-%d", strict=False), as_datetime.dt.date())


def _parse_number(column: str) -> pl.Expr:
    return pl.col(column).cast(pl.Float64, strict=False)


def _detail(template: str, *values: pl.Expr) -> pl.Expr:
    """An issue's detail: pl.format, with a missing value written as (blank) — pl.format gives
    null for the whole text when one value is null, and an issue always says what it is."""
    return pl.format(template, *(value.cast(pl.String).fill_null("(blank)") for value in values))


def _parsed(frame: pl.DataFrame, parsers: dict[str, pl.Expr], id_column: str, issues: list) -> pl.DataFrame:
    """Apply the parsers; a value that is present but does not parse becomes null and an
    `invalid_value` issue naming the field and the text."""
    parsed = frame.with_columns(**{f"_parsed_{c}": e for c, e in parsers.items()})
    for column in parsers:
        bad = parsed.filter(pl.col(column).is_not_null() & pl.col(f"_parsed_{column}").is_null())
        issues.append(
            bad.select(
                account_id=pl.col(id_column),
                issue=pl.lit("invalid_value"),
                detail=_detail(
                    "{} '{}' is not a valid {}; stored as null",
                    pl.lit(column),
                    pl.col(column),
                    pl.lit("date" if "date" in column else "number"),
                ),
            )
        )
    return parsed.drop(list(parsers)).rename({f"_parsed_{c}": c for c in parsers})


def _typed_accounts(raw: pl.DataFrame, issues: list) -> pl.DataFrame:
    missing_id = raw.filter(pl.col("account_id").is_null())
    issues.append(
        missing_id.select(
            account_id=pl.lit(None, dtype=pl.String),
            issue=pl.lit("missing_id"),
            detail=_detail("Account with Salesforce Id {} has no account ID; dropped", pl.col("salesforce_id")),
        )
    )
    parsers = {
        "create_date": _parse_date("create_date"),
        "renewal_date": _parse_date("renewal_date"),
        "contract_value": _parse_number("contract_value"),
        "licenses": _parse_number("licenses"),
    }
    typed = _parsed(raw.filter(pl.col("account_id").is_not_null()), parsers, "account_id", issues)
    return typed.with_columns(
        account_type=pl.lit("account"),
        product_key=pl.lit(None, dtype=pl.String),
    )


# --- identity and links ----------------------------------------------------------------


def _keep_latest(nodes: pl.DataFrame, issues: list) -> pl.DataFrame:
    """One record per account_id: the latest SystemModstamp, then the larger Salesforce Id."""
    # only the records of a duplicated ID are ranked: a rank over every record costs far more
    duplicated = pl.col("account_id").is_duplicated()
    ranked = nodes.filter(duplicated).with_columns(
        _rank=pl.struct("system_modstamp", "salesforce_id").rank("ordinal", descending=True).over("account_id")
    )
    # SystemModstamp is ISO text in one format, so text order is time order.
    kept = ranked.filter(pl.col("_rank") == 1)
    dropped = ranked.filter(pl.col("_rank") > 1).join(
        kept.select("account_id", kept_id=pl.col("salesforce_id")), on="account_id"
    )
    issues.append(
        dropped.select(
            "account_id",
            issue=pl.lit("duplicate_id"),
            detail=_detail(
                "Salesforce Id {} dropped; kept {} (latest SystemModstamp, then larger Id)",
                pl.col("salesforce_id"),
                pl.col("kept_id"),
            ),
        )
    )
    return pl.concat([nodes.filter(~duplicated), kept.drop("_rank")], how="vertical")


def _link_parents(accounts: pl.DataFrame, id_of_salesforce_id: pl.DataFrame, issues: list) -> pl.DataFrame:
    linked = accounts.join(
        id_of_salesforce_id.rename({"salesforce_id": "parent_salesforce_id", "account_id": "parent_id"}),
        on="parent_salesforce_id",
        how="left",
    )
    orphans = linked.filter(pl.col("parent_salesforce_id").is_not_null() & pl.col("parent_id").is_null())
    issues.append(
        orphans.select(
            "account_id",
            issue=pl.lit("orphan_parent"),
            detail=_detail("ParentId {} does not exist; the account is a root", pl.col("parent_salesforce_id")),
        )
    )
    return linked.drop("parent_salesforce_id")


def _product_accounts(
    assets_raw: pl.DataFrame,
    accounts: pl.DataFrame,
    id_of_salesforce_id: pl.DataFrame,
    separator: str,
    issues: list,
) -> pl.DataFrame:
    """A virtual account per product holding: `<account_id><sep><ProductCode>` under its holder."""
    holdings = assets_raw.join(
        id_of_salesforce_id.rename({"salesforce_id": "account_salesforce_id", "account_id": "parent_id"}),
        on="account_salesforce_id",
        how="left",
    )
    no_holder = holdings.filter(pl.col("parent_id").is_null())
    no_code = holdings.filter(pl.col("parent_id").is_not_null() & pl.col("product_code").is_null())
    issues.append(
        no_holder.select(
            account_id=pl.lit(None, dtype=pl.String),
            issue=pl.lit("orphan_parent"),
            detail=_detail(
                "Asset {} names AccountId {} that does not exist; the holding is dropped",
                pl.col("salesforce_id"),
                pl.col("account_salesforce_id"),
            ),
        )
    )
    issues.append(
        no_code.select(
            account_id=pl.col("parent_id"),
            issue=pl.lit("missing_product_code"),
            detail=_detail("Asset {} has no product code; the holding is dropped", pl.col("salesforce_id")),
        )
    )
    holder_columns = accounts.select(
        parent_id="account_id",
        holder_name="name",
        holder_status="status",
        holder_create_date="create_date",
        attributes="attributes",
    )
    valid = holdings.filter(pl.col("parent_id").is_not_null() & pl.col("product_code").is_not_null())
    valid = valid.with_columns(account_id=pl.col("parent_id") + separator + pl.col("product_code"))
    parsers = {
        "create_date": _parse_date("create_date"),
        "contract_value": _parse_number("contract_value"),
        "licenses": _parse_number("licenses"),
    }
    products = _parsed(valid, parsers, "account_id", issues).join(holder_columns, on="parent_id")
    return products.select(
        "salesforce_id",
        "account_id",
        name=pl.col("holder_name") + " - " + pl.coalesce("product_name", "product_code"),
        status=pl.coalesce("status", "holder_status"),
        create_date=pl.coalesce("create_date", "holder_create_date"),
        contract_value="contract_value",
        renewal_date=pl.lit(None, dtype=pl.Date),
        licenses="licenses",
        attributes="attributes",
        system_modstamp="system_modstamp",
        account_type=pl.lit("product"),
        product_key="product_code",
        parent_id="parent_id",
    ).select(accounts.columns)


# --- hierarchy ---------------------------------------------------------------------------


def _place_cutting_cycles(nodes: pl.DataFrame, issues: list) -> pl.DataFrame:
    """Every node placed in the hierarchy (_place_in_hierarchy), every member of a parent
    cycle having lost its parent link first (and become a root)."""
    placed = _place_in_hierarchy(nodes)
    links = nodes.select("account_id", "parent_id").filter(pl.col("parent_id").is_not_null())
    # Outside the trees hanging from roots, each node's parent is outside them too: what is
    # left after peeling off nodes that nobody points at is exactly the cycles.
    remaining = links.join(placed.select("account_id"), on="account_id", how="anti")
    if remaining.height == 0:  # every node hangs from a root: no cycle
        return placed
    while True:
        pointed_at = remaining.select(account_id="parent_id").unique()
        peeled = remaining.join(pointed_at, on="account_id", how="semi")
        if peeled.height == remaining.height:
            break
        remaining = peeled
    issues.append(
        remaining.select(
            "account_id",
            issue=pl.lit("cycle"),
            detail=_detail("parent link to {} cut: the account is part of a parent cycle", pl.col("parent_id")),
        )
    )
    members = remaining.select("account_id", _in_cycle=pl.lit(True))
    cut = (
        nodes.join(members, on="account_id", how="left")
        .with_columns(parent_id=pl.when(pl.col("_in_cycle")).then(None).otherwise(pl.col("parent_id")))
        .drop("_in_cycle")
    )
    return _place_in_hierarchy(cut)


def _place_in_hierarchy(nodes: pl.DataFrame) -> pl.DataFrame:
    """root_id, depth and path for every node that hangs from a root, level by level."""
    level = nodes.filter(pl.col("parent_id").is_null()).with_columns(
        root_id=pl.col("account_id"),
        depth=pl.lit(0, dtype=pl.Int32),
        path=pl.concat_list(pl.col("account_id")),
    )
    children = nodes.filter(pl.col("parent_id").is_not_null())
    levels = [level]
    while level.height and children.height:
        level = children.join(
            level.select(parent_id="account_id", root_id="root_id", parent_depth="depth", parent_path="path"),
            on="parent_id",
        ).select(
            *children.columns,
            root_id="root_id",
            depth=pl.col("parent_depth") + 1,
            path=pl.col("parent_path").list.concat(pl.concat_list("account_id")),
        )
        children = children.join(level, on="account_id", how="anti")
        levels.append(level)
    return pl.concat(levels, how="vertical")


def _apply_status_catalog(nodes: pl.DataFrame, status_catalog: list[tuple[str, str]]) -> pl.DataFrame:
    """Case-insensitive match to the catalog's spelling and group; otherwise group Unknown."""
    catalog = pl.DataFrame(
        {
            "_status_key": [status.lower() for status, _ in status_catalog],
            "_catalog_status": [status for status, _ in status_catalog],
            "status_group": [group for _, group in status_catalog],
        },
        schema={"_status_key": pl.String, "_catalog_status": pl.String, "status_group": pl.String},
    )
    return (
        nodes.with_columns(_status_key=pl.col("status").str.to_lowercase())
        .join(catalog, on="_status_key", how="left")
        .with_columns(
            status=pl.coalesce("_catalog_status", "status"),
            status_group=pl.col("status_group").fill_null(UNKNOWN_STATUS_GROUP),
        )
        .drop("_status_key", "_catalog_status")
    )
