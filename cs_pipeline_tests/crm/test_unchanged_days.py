"""A day whose CRM did not change (docs/data-model.md#snapshot-storage, unchanged days): when the
fingerprint of the export files, the mapping and the code is that of the snapshot date in force
on the day, `crm_snapshot` records the day without reading the files, and `accounts` records its
dimension without resolving it; every table is then what storing the day in full gives (the
path of a warehouse without fingerprints). A changed file (same size, same mtime), a changed
mapping or code, a day before every stored one and a warehouse of schema version 5 are stored
in full."""

from __future__ import annotations

import os
import shutil
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from cs_pipeline import cli, migrations, tables
from cs_pipeline.config import PipelineConfig, load_config
from cs_pipeline.crm.assets import refresh_users, resolve_account_snapshot, store_crm_snapshot, take_crm_snapshot
from cs_pipeline.crm.mapping import extract_snapshot
from cs_pipeline.crm.sources import CrmFilesSource
from cs_pipeline.crm.versions import SnapshotStored
from cs_pipeline.warehouse import connect
from cs_pipeline_tests.support.commands import public_tables
from cs_pipeline_tests.support.tenant import (
    APPENDIX_ACCOUNTS,
    APPENDIX_ASSETS,
    APPENDIX_CONTACTS,
    write_crm,
    write_events_csv,
    write_tenant,
)
from cs_pipeline_tests.support.warehouse import rows

CODE = "test-code"
# the tables a CRM day writes, as compared between two warehouses (run_id and fingerprint aside)
COMPARED = (
    "crm_account_versions", "crm_asset_versions", "crm_contact_versions", "account_versions",
    "hierarchy_issue_versions", "accounts", "hierarchy_issues", "users", "user_contacts", "snapshot_dates",
)  # fmt: skip
EARLY, LATE = "2025-11-05", "2025-11-12"  # the two dated exports
# the later export: ABC cancelled, a contact renamed
LATER_ACCOUNTS = [APPENDIX_ACCOUNTS[0], {**APPENDIX_ACCOUNTS[1], "Status__c": "Cancelled"}]
LATER_CONTACTS = [{**APPENDIX_CONTACTS[0], "Name": "Ann B."}, APPENDIX_CONTACTS[1]]


def d(day: str) -> date:
    return date.fromisoformat(day)


def write_exports(root: Path) -> PipelineConfig:
    """A tenant whose CRM folder holds the export of EARLY (the appendix CRM) and of LATE."""
    config = load_config(write_tenant(root, crm=None))
    write_crm(root / "crm" / f"date={EARLY}", APPENDIX_ACCOUNTS, APPENDIX_ASSETS, APPENDIX_CONTACTS)
    write_crm(root / "crm" / f"date={LATE}", LATER_ACCOUNTS, APPENDIX_ASSETS, LATER_CONTACTS)
    return config


class Site:
    """A tenant and its warehouse, whose CRM days run either as the assets run them (`skipping`) or
    each stored in full without fingerprints, as the code before fingerprints did."""

    def __init__(self, root: Path, skipping: bool):
        self.root, self.skipping = root, skipping
        self.config = write_exports(root)
        self.con = connect(self.config.warehouse)

    def day(self, day: str, config: PipelineConfig | None = None, code: str = CODE) -> tuple[SnapshotStored, ...]:
        """crm_snapshot, accounts and users for `day`: what crm_snapshot and accounts stored."""
        config = config or self.config
        source = CrmFilesSource(files_dir=str(config.crm.files_dir)).as_of(d(day)).source
        if self.skipping:
            crm = take_crm_snapshot(self.con, d(day), source, config, "r", code)
        else:
            crm = store_crm_snapshot(self.con, d(day), extract_snapshot(source, config), "r")
        accounts = resolve_account_snapshot(self.con, d(day), config, "r", code)
        refresh_users(self.con, "r")
        return crm, accounts

    def tables(self) -> dict[str, list[tuple]]:
        kept = "COLUMNS(lambda c: c NOT IN ('run_id', 'fingerprint'))"
        return {name: self.con.execute(f"SELECT {kept} FROM {name} ORDER BY ALL").fetchall() for name in COMPARED}


@pytest.fixture
def sites(tmp_path):
    skipping, full = Site(tmp_path / "skipping", True), Site(tmp_path / "full", False)
    yield skipping, full
    skipping.con.close()
    full.con.close()


def skipped(stored: tuple[SnapshotStored, ...]) -> list[date | None]:
    return [s.unchanged_since for s in stored]


def written(stored: tuple[SnapshotStored, ...]) -> list[int]:
    return [s.metadata()["versions_written"] for s in stored]


def test_unchanged_days_write_nothing_and_give_the_tables_of_full_storage_in_any_order(sites):
    skipping, full = sites
    # (day, the dates crm_snapshot and accounts follow unread: None when stored in full)
    sequence = [
        (EARLY, [None, None]),  # the first date: stored in full
        ("2025-11-06", [d(EARLY), d(EARLY)]),  # the same export: unchanged
        (LATE, [None, None]),  # a new export
        ("2025-11-14", [d(LATE), d(LATE)]),
        ("2025-11-09", [d("2025-11-06")] * 2),  # between two stored dates, reading the earlier's export
        ("2025-11-14", [d("2025-11-14")] * 2),  # re-run: its own date is in force
        ("2025-11-03", [None, None]),  # before every stored date: reads the oldest export, stored in full
    ]
    for day, expected in sequence:
        found = skipping.day(day)
        assert skipped(found) == expected, day
        full_path = full.day(day)
        assert written(full_path) == (written(found) if None in expected else [0, 0]), day
        if None not in expected:
            assert written(found) == [0, 0] and [s.writes for s in found] == [{}, {}], day
        assert skipping.tables() == full.tables(), day
    # the day before every date extended the versions of the 5th back: rows written
    assert written(found) == [s.metadata()["versions_written"] for s in full_path] and min(written(found)) > 0
    fingerprints = skipping.con.execute(
        "SELECT asset, count(DISTINCT fingerprint), count(fingerprint) FROM snapshot_dates GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert fingerprints == [("accounts", 2, 6), ("crm_snapshot", 2, 6)]  # one per export, on every date
    # what the later export says, on the dates it is in force
    assert skipping.con.execute(
        "SELECT status FROM account_versions WHERE account_id = 'ABC' AND in_force(valid_from, valid_to, ?)",
        [d("2025-11-14")],
    ).fetchall() == [("Cancelled",)]


def test_a_file_changed_with_the_same_size_and_mtime_is_read(sites):
    skipping, full = sites
    for site in sites:
        site.day(EARLY)
    path = skipping.root / "crm" / f"date={EARLY}" / "Account.csv"
    stat = path.stat()
    data = path.read_bytes()
    assert b"Enterprise" in data
    path.write_bytes(data.replace(b"Enterprise", b"Enterprize"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    shutil.copy2(path, full.root / "crm" / f"date={EARLY}" / "Account.csv")

    found = skipping.day("2025-11-06")
    assert skipped(found) == [None, None] and min(written(found)) > 0
    full.day("2025-11-06")
    assert skipping.tables() == full.tables()
    assert skipping.con.execute(
        "SELECT status, attributes['segment'] FROM accounts WHERE account_id = 'XYZ'"
    ).fetchall() == [("Enterprize", "Enterprize")]


def test_a_changed_mapping_or_code_is_read_and_resolved_again(sites):
    skipping, full = sites
    for site in sites:
        site.day(EARLY)
    # the same files, the account name read from Segment__c first
    remapped = skipping.config.model_copy(
        update={
            "crm": skipping.config.crm.model_copy(
                update={
                    "mapping": skipping.config.crm.mapping.model_copy(
                        update={
                            "account": skipping.config.crm.mapping.account.model_copy(
                                update={"name": ["Segment__c", "Name"]}
                            )
                        }
                    )
                }
            )
        }
    )
    found = skipping.day("2025-11-06", config=remapped)
    assert skipped(found) == [None, None] and min(written(found)) > 0
    assert skipping.con.execute("SELECT name FROM accounts WHERE account_id = 'XYZ'").fetchall() == [("Enterprise",)]
    # the next day with that mapping: unchanged again
    assert skipped(skipping.day("2025-11-07", config=remapped)) == [d("2025-11-06")] * 2
    # other code: read and resolved again, nothing written (the rows are the same)
    found = skipping.day("2025-11-08", config=remapped, code="other-code")
    assert skipped(found) == [None, None] and written(found) == [0, 0]


def test_a_warehouse_of_version_5_is_read_on_its_first_day_and_skipped_after(tmp_path):
    site = Site(tmp_path / "site", True)
    site.day(EARLY)
    site.con.close()
    # as the code of version 5 left it: no fingerprint column nor the other tables and columns of later
    # versions, the columns later versions dropped back (empty), version 5 recorded
    with duckdb.connect(str(site.config.warehouse)) as con:
        for table in tables.TABLE_LIST:
            if table.since > 5:
                con.execute(f"DROP TABLE {table.name}")
                continue
            for column in table.columns:
                if column.since > 5:
                    con.execute(f"ALTER TABLE {table.name} DROP COLUMN {column.name}")
                elif column.until is not None:
                    con.execute(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {column.type}")
        con.execute("UPDATE schema_version SET version = 5")
    site.con = connect(site.config.warehouse)  # upgraded: the dates stored before have no fingerprint
    try:
        assert site.con.execute("SELECT max(version) FROM schema_version").fetchall() == [(migrations.LATEST,)]
        assert site.con.execute("SELECT count(fingerprint) FROM snapshot_dates").fetchall() == [(0,)]
        first = site.day("2025-11-06")
        assert skipped(first) == [None, None] and written(first) == [0, 0]  # compared: nothing changed
        assert skipped(site.day("2025-11-07")) == [d("2025-11-06")] * 2
    finally:
        site.con.close()


# --- through the pipeline -------------------------------------------------------------------

# the 10th..14th: the export of the 5th read on the 10th and 11th, that of the 12th from the 12th
PIPELINE_DAYS = [f"2025-11-{n:02d}" for n in range(10, 15)]
INTERNAL = (
    "crm_account_versions", "crm_asset_versions", "crm_contact_versions", "account_versions",
    "hierarchy_issue_versions", "user_contacts",
)  # fmt: skip


def pipeline_tenant(root: Path) -> Path:
    write_exports(root)
    for n, day in enumerate(PIPELINE_DAYS):
        write_events_csv(root / "landing", day, "a.csv", [
            {"event_id": f"e{n}", "ts": f"{day}T10:00:00Z", "account_id": "XYZ", "user_id": "Ann@Acme.com",
             "module": "Billing", "action": "Send invoice"},
            {"event_id": f"f{n}", "ts": f"{day}T11:00:00Z", "account_id": "ABC_Widget2", "user_id": f"u{n % 3}",
             "action": "Login"},
        ])  # fmt: skip
    return root / "cs_pipeline.yaml"


def crm_metadata(root: Path, monkeypatch: pytest.MonkeyPatch) -> dict[tuple[str, str], dict[str, object]]:
    """crm_snapshot's and accounts' metadata per (asset, day), their work's seconds and the export's
    folder (the site's) aside."""
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
    instance = dg.DagsterInstance.get()
    found = {}
    for asset in ("crm_snapshot", "accounts"):
        for day in PIPELINE_DAYS:
            [record] = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[day]), limit=1
            ).records
            metadata = record.asset_materialization.metadata
            found[asset, day] = {k: v.value for k, v in metadata.items() if k not in ("seconds", "export_folder")}
    return found


@pytest.mark.e2e
def test_a_backfill_skipping_unchanged_days_gives_the_tables_and_metadata_of_days_stored_in_full(
    tmp_path, monkeypatch
):
    skipping, full = tmp_path / "skipping", tmp_path / "full"
    monkeypatch.setenv("DAGSTER_HOME", str(skipping / "dagster_home"))
    config = pipeline_tenant(skipping)
    assert cli.main(["--config", str(config), "backfill", "--start", PIPELINE_DAYS[0], "--end", PIPELINE_DAYS[-1]]) == 0
    # the same days, one run each, every date's fingerprint forgotten before the next: all stored in full
    monkeypatch.setenv("DAGSTER_HOME", str(full / "dagster_home"))
    config = pipeline_tenant(full)
    for day in PIPELINE_DAYS:
        assert cli.main(["--config", str(config), "materialize", "--date", day]) == 0
        with duckdb.connect(str(full / "warehouse.duckdb")) as con:
            con.execute("UPDATE snapshot_dates SET fingerprint = NULL")

    assert public_tables(skipping) == public_tables(full)
    for name in INTERNAL:
        query = f"SELECT COLUMNS(lambda c: c != 'run_id') FROM {name} ORDER BY ALL"
        assert rows(skipping, query) == rows(full, query), name
    dates = "SELECT asset, snapshot_date FROM snapshot_dates ORDER BY ALL"
    assert rows(skipping, dates) == rows(full, dates)

    found, expected = crm_metadata(skipping, monkeypatch), crm_metadata(full, monkeypatch)
    unchanged = {"2025-11-11", "2025-11-13", "2025-11-14"}
    assert {key: m.pop("skipped_unchanged") for key, m in found.items()} == {
        (asset, day): int(day in unchanged) for asset, day in found
    }
    assert {m.pop("skipped_unchanged") for m in expected.values()} == {0}
    assert found == expected
    # the counts by hand: 2 accounts, 3 assets, 2 contacts; XYZ, ABC and their 3 product accounts
    assert [found["crm_snapshot", "2025-11-13"][key] for key in ("accounts", "assets", "contacts")] == [2, 3, 2]
    assert [found["accounts", "2025-11-13"][key] for key in ("snapshot_accounts", "status_canceled")] == [5, 2]
    assert [found[asset, "2025-11-13"]["versions_written"] for asset in ("crm_snapshot", "accounts")] == [0, 0]
