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

import duckdb
import pytest

from cs_pipeline import migrations
from cs_pipeline.config import PipelineConfig, load_config
from cs_pipeline.crm.assets import refresh_users, resolve_account_snapshot, store_crm_snapshot, take_crm_snapshot
from cs_pipeline.crm.mapping import extract_snapshot
from cs_pipeline.crm.sources import CrmFilesSource
from cs_pipeline.crm.versions import SnapshotStored
from cs_pipeline.warehouse import connect
from cs_pipeline_tests.support.tenant import (
    APPENDIX_ACCOUNTS,
    APPENDIX_ASSETS,
    APPENDIX_CONTACTS,
    write_crm,
    write_tenant,
)

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
    # as the code of version 5 left it: no fingerprint column, version 5 recorded
    with duckdb.connect(str(site.config.warehouse)) as con:
        con.execute("ALTER TABLE snapshot_dates DROP COLUMN fingerprint")
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
