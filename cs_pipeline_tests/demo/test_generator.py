"""The synthetic tenant generator: file layout, CRM shape, event realism and determinism."""

from __future__ import annotations

import gzip
import io
import re
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from cs_pipeline import cli
from cs_pipeline.demo.generator import (
    ACCOUNT_COLUMNS,
    ASSET_COLUMNS,
    CONTACT_COLUMNS,
    EVENT_FORMATS,
    MODULE_ACTIONS,
    STATUS_CATALOG,
    TenantSummary,
    generate_tenant,
)
from cs_pipeline_tests.support.tenant import CONFIG

END = date(2025, 11, 30)
DAYS = 14
SMALL: dict[str, Any] = {"end_date": END, "days": DAYS, "accounts": 60, "events_per_day": 400, "seed": 11}
OFFSET = re.compile(r"[+-]\d\d:\d\d$")


@pytest.fixture(scope="module")
def tenant(tmp_path_factory: pytest.TempPathFactory) -> TenantSummary:
    return generate_tenant(tmp_path_factory.mktemp("tenant"), **SMALL)


@pytest.fixture(scope="module")
def clean_tenant(tmp_path_factory: pytest.TempPathFactory) -> TenantSummary:
    return generate_tenant(tmp_path_factory.mktemp("clean"), **SMALL, bad_rows=False)


def _read_crm(summary: TenantSummary, name: str) -> pl.DataFrame:
    return pl.read_csv(summary.latest_crm_export / f"{name}.csv", infer_schema=False)


def _read_event_file(path: Path) -> pl.DataFrame:
    """One delivery as text columns; ts_text keeps what a text file says, ts_utc the instant."""
    name = path.name
    if name.endswith(".parquet"):
        frame = pl.read_parquet(path)
        assert frame.schema["ts"] == pl.Datetime("us", "UTC")
        frame = frame.with_columns(ts_utc=pl.col("ts"), ts_text=pl.lit(None, dtype=pl.String)).drop("ts")
    else:
        if name.endswith(".csv"):
            frame = pl.read_csv(path, infer_schema=False)
        else:
            data = gzip.decompress(path.read_bytes()) if name.endswith(".gz") else path.read_bytes()
            frame = pl.read_ndjson(io.BytesIO(data), infer_schema_length=None)
        texts = frame["ts"].to_list()
        frame = frame.drop("ts").with_columns(
            ts_text=pl.Series(texts, dtype=pl.String),
            ts_utc=pl.Series([_parse_ts(text) for text in texts], dtype=pl.Datetime("us", "UTC")),
        )
    if "event_id" not in frame.columns:
        frame = frame.with_columns(event_id=pl.lit(None, dtype=pl.String))
    return frame.select(
        pl.lit(path.name).alias("file"),
        pl.lit(date.fromisoformat(path.parent.name.removeprefix("date="))).alias("partition"),
        pl.col("event_id", "account_id", "user_id", "module", "action").cast(pl.String),
        "ts_text",
        "ts_utc",
    )


def _parse_ts(text: str | None) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _events(summary: TenantSummary) -> pl.DataFrame:
    files = sorted((summary.landing_dir / "usage").glob("date=*/events-*"))
    return pl.concat([_read_event_file(path) for path in files])


def _account_ids(summary: TenantSummary) -> set[str]:
    accounts = _read_crm(summary, "Account")
    return set(accounts.select(pl.coalesce("External_Id__c", "Id")).to_series())


def test_every_day_has_a_file_in_every_format(tenant: TenantSummary) -> None:
    assert tenant.days == [END - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    for day in tenant.days:
        day_dir = tenant.landing_dir / "usage" / f"date={day.isoformat()}"
        names = sorted(path.name for path in day_dir.iterdir())
        for fmt in EVENT_FORMATS:
            assert any(name.endswith(f".{fmt}") and name.startswith("events-") for name in names), (day, fmt)
    events = _events(tenant)
    assert events.height == tenant.events_written
    # Some files leave event_id out (IDs get hashed downstream), most carry it.
    with_ids = events.group_by("partition", "file").agg(pl.col("event_id").is_not_null().any())
    assert 0 < with_ids["event_id"].sum() < with_ids.height


def test_parquet_only(tmp_path: Path) -> None:
    summary = generate_tenant(tmp_path, **{**SMALL, "days": 2}, formats=("parquet",))
    files = sorted((summary.landing_dir / "usage").glob("date=*/*"))
    assert files and all(path.name.endswith(".parquet") for path in files)
    assert sum(pl.read_parquet(path).height for path in files) == summary.events_written


def test_crm_headers_are_salesforce_field_names(tenant: TenantSummary) -> None:
    for name, columns in (("Account", ACCOUNT_COLUMNS), ("Asset", ASSET_COLUMNS), ("Contact", CONTACT_COLUMNS)):
        header = (tenant.latest_crm_export / f"{name}.csv").read_text().splitlines()[0]
        assert header.split(",") == list(columns)
    assert "Product2.ProductCode" in ASSET_COLUMNS
    assert tenant.accounts == _read_crm(tenant, "Account").height
    assert tenant.assets == _read_crm(tenant, "Asset").height
    assert tenant.contacts == _read_crm(tenant, "Contact").height


def test_crm_values(tenant: TenantSummary) -> None:
    accounts = _read_crm(tenant, "Account")
    assert accounts["Id"].str.contains(r"^001[0-9A-Za-z]{15}$").all()
    assert accounts["Id"].n_unique() == accounts.height
    assert accounts["External_Id__c"].null_count() > 0  # the Id fallback gets exercised
    assert accounts["CreatedDate"].str.contains(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000$").all()
    assert accounts["Customer_Since__c"].drop_nulls().str.contains(r"^\d{4}-\d\d-\d\d$").all()
    statuses = set(accounts["Status__c"].drop_nulls())
    catalog = {status.lower() for status in STATUS_CATALOG}
    assert {status.lower() for status in statuses} <= catalog | {"legacy"}
    assert statuses - set(STATUS_CATALOG), "some statuses are spelt in another case or uncatalogued"
    assert set(accounts["CSM_Risk__c"].drop_nulls()) <= {
        "0 - NO RISK",
        "1 - MINOR",
        "2 - MAJOR",
        "3 - HIGH",
        "4 - CRITICAL",
    }
    assert set(accounts["Segment__c"]) <= {"Enterprise", "Mid-Market", "SMB"}
    assert set(accounts["IsDeleted"]) == {"false"}
    # Onboarding accounts, one created in the last five days.
    created = accounts["CreatedDate"].str.slice(0, 10).str.to_date()
    assert (created > END - timedelta(days=30)).sum() >= 2
    assert (created > END - timedelta(days=5)).any()
    assert (created <= END).all()

    contacts = _read_crm(tenant, "Contact")
    assert set(contacts["AccountId"]) <= set(accounts["Id"])
    assert (contacts["Email"] != contacts["Email"].str.to_lowercase()).any()  # mixed case
    assert contacts.select(pl.col("Email").str.to_lowercase(), "AccountId").is_unique().all()


def test_every_parent_id_is_an_account_id(tenant: TenantSummary) -> None:
    accounts = _read_crm(tenant, "Account")
    ids = set(accounts["Id"])
    parent_of = dict(zip(accounts["Id"], accounts["ParentId"], strict=True))
    assert {parent for parent in parent_of.values() if parent} <= ids
    depth: Counter[int] = Counter()
    for account in ids:  # 3 levels at most, no cycles
        level, node = 0, account
        while parent_of[node]:
            node, level = parent_of[node], level + 1
            assert level <= 2
        depth[level] += 1
    assert depth[0] > depth[1] > 0 and depth[2] > 0


def test_product_holdings(tenant: TenantSummary) -> None:
    accounts = _read_crm(tenant, "Account")
    assets = _read_crm(tenant, "Asset")
    assert set(assets["AccountId"]) <= set(accounts["Id"])
    assert assets.select("AccountId", "Product2.ProductCode").is_unique().all()  # never the same product twice
    assert assets["Status"].null_count() > assets.height / 2  # mostly inherited


def test_event_accounts_are_crm_accounts_held_products_or_ghosts(tenant: TenantSummary) -> None:
    accounts = _read_crm(tenant, "Account").select("Id", pl.coalesce("External_Id__c", "Id").alias("account_id"))
    held = (
        _read_crm(tenant, "Asset")
        .join(accounts, left_on="AccountId", right_on="Id")
        .select(pl.concat_str("account_id", pl.lit("_"), "Product2.ProductCode"))
        .to_series()
    )
    seen = set(_events(tenant)["account_id"].str.strip_chars().drop_nulls()) - {""}
    products = {account for account in seen if "_" in account}
    ghosts = {account for account in seen if account.startswith("ghost-")}
    assert products and products <= set(held)
    assert ghosts
    assert seen - products - ghosts <= _account_ids(tenant)


def test_users_modules_and_actions(tenant: TenantSummary) -> None:
    events = _events(tenant)
    users = events["user_id"].drop_nulls()
    assert users.str.contains("@").sum() > 0.6 * users.len()  # mostly e-mails
    assert (users.str.contains("@") & (users != users.str.to_lowercase())).any()
    assert (users != users.str.strip_chars()).any()
    assert users.str.contains(r"^U\d{7}$").any()  # internal IDs
    assert events["user_id"].null_count() + (users == "").sum() > 0
    modules = set(events["module"].drop_nulls())
    assert 3 <= len(modules) <= 10 and "Clients" in modules
    actions = set(events["action"].drop_nulls()) - {""}
    assert {"Send invoice", "Escalate ticket"} <= actions and 15 <= len(actions) <= 30


def test_weekdays_are_busier_than_weekends(tenant: TenantSummary) -> None:
    per_day = _events(tenant).group_by("partition").len()
    weekend = pl.col("partition").dt.weekday() > 5
    means = per_day.group_by(weekend.alias("weekend")).agg(pl.col("len").mean())
    weekday_mean, weekend_mean = (means.filter(pl.col("weekend") == flag)["len"].item() for flag in (False, True))
    assert weekday_mean > 1.5 * weekend_mean


def test_archetypes_give_every_usage_frequency(tenant: TenantSummary) -> None:
    events = _events(tenant).filter(pl.col("ts_utc").is_not_null())
    active_days = (
        events.filter(pl.col("ts_utc").dt.date() > END - timedelta(days=14))
        .group_by(pl.col("account_id").str.strip_chars())
        .agg(pl.col("ts_utc").dt.date().n_unique().alias("days"))
    )
    silent = _account_ids(tenant) - set(active_days["account_id"])
    assert (active_days["days"] >= 9).any()  # Daily
    assert active_days["days"].is_between(2, 8).any()  # Weekly
    assert silent  # Monthly or Inactive accounts


def test_late_events_and_offsets(tenant: TenantSummary) -> None:
    events = _events(tenant).filter(pl.col("ts_utc").is_not_null())
    assert tenant.late_events_written > 0
    assert (events["ts_utc"].dt.date() == events["partition"] - timedelta(days=1)).sum() >= tenant.late_events_written
    texts = events["ts_text"].drop_nulls()
    assert texts.str.ends_with("Z").any() and texts.str.contains(r"\d$").any()  # 'Z' and no offset
    with_offset = events.filter(pl.col("ts_text").str.contains(OFFSET.pattern))
    assert with_offset.height > 0
    # Near midnight, the local date of an offset timestamp is not its UTC date.
    local_date = with_offset["ts_text"].str.slice(0, 10).str.to_date()
    assert (local_date != with_offset["ts_utc"].dt.date()).any()


def test_bad_rows_and_redeliveries_only_when_asked(tenant: TenantSummary, clean_tenant: TenantSummary) -> None:
    def problems(summary: TenantSummary) -> dict[str, int]:
        events = _events(summary)
        ids = events["event_id"].drop_nulls()
        return {
            "missing_account_id": events.filter(pl.col("account_id").str.strip_chars().fill_null("") == "").height,
            "missing_action": events.filter(pl.col("action").str.strip_chars().fill_null("") == "").height,
            "bad_timestamp": events.filter(pl.col("ts_utc").is_null()).height,
            "future_timestamp": events.filter(
                pl.col("ts_utc").dt.date() > pl.col("partition") + timedelta(days=1)
            ).height,
            "redelivered": ids.len() - ids.n_unique(),
        }

    found = problems(tenant)
    assert all(count > 0 for count in found.values()), found
    rejected = (
        found["missing_account_id"] + found["missing_action"] + found["bad_timestamp"] + found["future_timestamp"]
    )
    assert rejected == tenant.bad_rows_written
    assert found["redelivered"] == tenant.redelivered_rows_written
    assert tenant.bad_rows_written < 0.01 * tenant.events_written

    assert problems(clean_tenant) == dict.fromkeys(found, 0)
    assert clean_tenant.bad_rows_written == clean_tenant.redelivered_rows_written == 0


def test_redeliveries_are_exact_copies(tenant: TenantSummary) -> None:
    events = _events(tenant).filter(pl.col("event_id").is_not_null())
    copies = events.filter(pl.col("event_id").is_duplicated())
    assert copies.height > 0
    distinct = copies.group_by("event_id").agg(
        pl.col("partition").n_unique(),
        *(pl.col(c).n_unique() for c in ("ts_utc", "account_id", "user_id", "module", "action")),
    )
    assert (distinct["partition"] == 2).all()
    assert (distinct.drop("event_id", "partition") == 1).to_numpy().all()


def _contents(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    small = {**SMALL, "days": 3}
    first = generate_tenant(tmp_path / "a", **small)
    second = generate_tenant(tmp_path / "b", **small)
    other = generate_tenant(tmp_path / "c", **{**small, "seed": 12})

    assert _contents(tmp_path / "a") == _contents(tmp_path / "b")
    assert first == TenantSummary(**{**second.__dict__, "crm_dir": first.crm_dir, "landing_dir": first.landing_dir})
    latest = "Account.csv"
    assert (other.latest_crm_export / latest).read_bytes() != (first.latest_crm_export / latest).read_bytes()


def test_progress_once_per_day_and_rerun_replaces_files(tmp_path: Path) -> None:
    messages: list[str] = []
    generate_tenant(tmp_path, **{**SMALL, "days": 3, "events_per_day": 2_000}, progress=messages.append)
    assert len(messages) == 3
    summary = generate_tenant(tmp_path, **{**SMALL, "days": 3}, formats=("csv",))
    files = sorted((summary.landing_dir / "usage").glob("date=*/*"))
    assert all(path.suffix == ".csv" for path in files)
    assert sum(_read_event_file(path).height for path in files) == summary.events_written


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="formats"):
        generate_tenant(tmp_path, end_date=END, formats=("xlsx",))
    with pytest.raises(ValueError):
        generate_tenant(tmp_path, end_date=END, days=0)


# The story of the window (docs/data-model.md#dated-exports, README's demo): dated CRM
# exports in which about one account in eight changes status, churners fading out first.
STORY: dict[str, Any] = {
    "end_date": END, "days": 56, "accounts": 300, "events_per_day": 900, "seed": 11, "formats": ("parquet",),
}  # fmt: skip
CHANGE_KINDS = {"new", "conversion", "churn", "reactivation", "downgrade", "plan_change", "unclassified"}
GROUPS = {"trial": "Free", "internal-use": "Free", "personal": "Paying", "pro": "Paying", "enterprise": "Paying",
          "cancelled": "Canceled"}  # fmt: skip


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> TenantSummary:
    return generate_tenant(tmp_path_factory.mktemp("story"), **STORY)


def _export_statuses(summary: TenantSummary, day: date) -> dict[str, str]:
    """account_id -> status (lower case, "" when missing) in the export of `day`."""
    accounts = pl.read_csv(summary.crm_dir / f"date={day.isoformat()}" / "Account.csv", infer_schema=False)
    ids = accounts.select(pl.coalesce("External_Id__c", "Id")).to_series()
    return dict(zip(ids, accounts["Status__c"].str.to_lowercase().fill_null(""), strict=True))


def _kind(before: str, after: str) -> str:
    """docs/lifecycle.md#status-changes, for two different statuses."""
    old, new = GROUPS.get(before, "Unknown"), GROUPS.get(after, "Unknown")
    if new == "Canceled" and old != "Canceled":
        return "churn"
    if old == "Canceled" and new in ("Free", "Paying"):
        return "reactivation"
    if (old, new) in (("Free", "Paying"), ("Paying", "Free")):
        return "conversion" if old == "Free" else "downgrade"
    return "plan_change" if old == new != "Unknown" else "unclassified"


def _changes(summary: TenantSummary) -> list[tuple[date, str, str]]:
    """(export date, account_id, kind) of each CRM account's change from one export to the next."""
    found, previous = [], None
    for day in summary.crm_exports:
        current = _export_statuses(summary, day)
        for account, status in current.items():
            if previous is not None and previous.get(account) != status:
                found.append((day, account, "new" if account not in previous else _kind(previous[account], status)))
        previous = current
    return found


def test_the_crm_is_exported_weekly_and_on_the_last_day(story: TenantSummary) -> None:
    first = END - timedelta(days=55)
    assert story.crm_exports == (*(first + timedelta(days=7 * week) for week in range(8)), END)
    assert sorted(path.name for path in story.crm_dir.iterdir()) == [f"date={day}" for day in story.crm_exports]
    for day in story.crm_exports:
        assert sorted(path.name for path in (story.crm_dir / f"date={day}").iterdir()) == [
            "Account.csv", "Asset.csv", "Contact.csv",
        ]  # fmt: skip
    # accounts created during the window show from the first export after their creation on
    counts = [pl.read_csv(story.crm_dir / f"date={day}" / "Account.csv").height for day in story.crm_exports]
    assert counts == sorted(counts) and counts[0] < counts[-1] == story.accounts == 300


def test_about_one_account_in_eight_changes_status_and_every_kind_occurs(story: TenantSummary) -> None:
    changes = _changes(story)
    changed = [account for _, account, kind in changes if kind != "new"]
    assert len(changed) == len(set(changed)) == story.status_changes_planned  # one change each at most
    assert 0.10 <= len(changed) / story.accounts <= 0.15
    assert {kind for _, _, kind in changes} == CHANGE_KINDS
    kinds = Counter(kind for _, _, kind in changes)
    assert kinds["churn"] >= kinds["conversion"] >= kinds["downgrade"] >= 1


def _events_per_account(summary: TenantSummary) -> pl.DataFrame:
    files = sorted((summary.landing_dir / "usage").glob("date=*/events-*.parquet"))
    return pl.concat(
        pl.read_parquet(path).select(pl.col("account_id").str.strip_chars(), pl.col("ts").dt.date().alias("day"))
        for path in files
    )


def _count(events: pl.DataFrame, account: str, first: date, last: date) -> int:
    return events.filter((pl.col("account_id") == account) & pl.col("day").is_between(first, last)).height


def test_churners_usage_declines_before_they_churn_with_noise(story: TenantSummary) -> None:
    """Per churn whose export date E leaves four weeks of window before it: the account's events
    in weeks 4-3 before E against weeks 2-1. On average the later weeks have far fewer, yet some
    churners stay as busy as before to the end."""
    events = _events_per_account(story)
    start = story.days[0]
    pairs = [
        (_count(events, account, day - timedelta(days=28), day - timedelta(days=15)),
         _count(events, account, day - timedelta(days=14), day - timedelta(days=1)))
        for day, account, kind in _changes(story)
        if kind == "churn" and day - timedelta(days=28) >= start
    ]  # fmt: skip
    assert len(pairs) >= 8
    early, late = (sum(side) / len(pairs) for side in zip(*pairs, strict=True))
    assert late < 0.75 * early
    assert any(before >= 5 and after >= 0.8 * before for before, after in pairs)  # a surprise churn

    # and some accounts that never churn have a fortnight far quieter than the one before (a dip)
    churned = {account for _, account, kind in _changes(story) if kind == "churn"}
    fortnights = (
        events.filter(~pl.col("account_id").is_in(churned) & (pl.col("day") >= start))
        .group_by("account_id", ((pl.col("day") - start).dt.total_days() // 14).alias("fortnight"))
        .len()
        .sort("account_id", "fortnight")
        .with_columns(before=pl.col("len").shift(1).over("account_id"))
    )
    assert fortnights.filter((pl.col("before") >= 20) & (pl.col("len") < 0.25 * pl.col("before"))).height >= 1


def test_a_rerun_removes_the_exports_of_an_earlier_one(tmp_path: Path) -> None:
    (tmp_path / "crm").mkdir()
    (tmp_path / "crm" / "Account.csv").write_text("Id\n")  # the undated layout of an older demo
    generate_tenant(tmp_path, **{**SMALL, "days": 3, "end_date": END - timedelta(days=1)})
    summary = generate_tenant(tmp_path, **{**SMALL, "days": 3})
    assert summary.crm_exports == (END - timedelta(days=2), END)
    assert sorted(path.name for path in summary.crm_dir.iterdir()) == [f"date={day}" for day in summary.crm_exports]


@pytest.mark.e2e  # runs the pipeline through the CLI
def test_every_change_kind_shows_in_status_changes_after_a_backfill(tmp_path: Path, monkeypatch) -> None:
    """Four days exported daily: every kind occurs (each at least once from 48 accounts on),
    and the pipeline's changes of CRM accounts are those the exports give."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    summary = generate_tenant(tmp_path, end_date=END, days=4, accounts=60, events_per_day=100, crm_export_every=1)
    config = tmp_path / "cs_pipeline.yaml"
    config.write_text(CONFIG)
    assert cli.main(["--config", str(config), "backfill", "--start", str(summary.days[0]), "--end", str(END)]) == 0
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT date, account_id, account_type, kind FROM status_changes").fetchall()
    assert {kind for *_, kind in rows} == CHANGE_KINDS
    later = {(day, account, kind) for day, account, account_type, kind in rows if account_type == "account"}
    assert later - {row for row in later if row[0] == summary.days[0]} == set(_changes(summary))


def test_the_demo_vocabulary_given_explicitly_gives_the_same_bytes(tmp_path: Path) -> None:
    """The shape parameters left out are the demo's tenant: naming MODULE_ACTIONS changes nothing."""
    small = {**SMALL, "days": 3}
    generate_tenant(tmp_path / "default", **small)
    generate_tenant(tmp_path / "explicit", **small, module_actions=MODULE_ACTIONS)

    assert _contents(tmp_path / "default") == _contents(tmp_path / "explicit")


def test_another_shape_uses_its_modules_actions_and_contacts(tmp_path: Path) -> None:
    modules = {f"M{m}": [(f"M{m} a{a}", 1.0) for a in range(7)] for m in range(9)}
    summary = generate_tenant(
        tmp_path, **{**SMALL, "days": 2}, formats=("parquet",), module_actions=modules, contacts_per_account=(3, 5)
    )
    events = pl.concat(
        [pl.read_parquet(path) for path in sorted(summary.landing_dir.glob("usage/*/*.parquet"))], how="diagonal"
    )
    assert set(events["module"].drop_nulls()) <= set(modules)
    actions = {name for pairs in modules.values() for name, _ in pairs}
    assert set(events["action"].drop_nulls()) - {""} <= actions
    assert len(set(events["action"].drop_nulls()) - {""}) > 40  # most of the 63 actions occur
    contacts = pl.read_csv(summary.latest_crm_export / "Contact.csv")
    per_account = contacts.group_by("AccountId").len()["len"]
    assert per_account.min() >= 3 and per_account.max() <= 5
    with pytest.raises(ValueError, match="action names unique"):
        generate_tenant(tmp_path, **SMALL, module_actions={"A": [("x", 1.0)], "B": [("x", 1.0)]})
    with pytest.raises(ValueError, match="contacts_per_account"):
        generate_tenant(tmp_path, **SMALL, contacts_per_account=(4, 2))
