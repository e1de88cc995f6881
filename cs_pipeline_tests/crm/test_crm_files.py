"""CRM export files: the default field mapping, fallbacks and clear errors
(docs/data-model.md#crm-objects-and-field-mapping, #crm-export-files)."""

import re
from datetime import date

import dagster as dg
import duckdb
import polars as pl
import pytest

from cs_pipeline import cli
from cs_pipeline.config import load_config
from cs_pipeline.crm.hierarchy import resolve_accounts
from cs_pipeline.crm.mapping import extract_snapshot
from cs_pipeline.crm.sources import CrmFilesSource, CrmSourceError
from cs_pipeline_tests.support.tenant import (
    ACCOUNT_HEADER,
    APPENDIX_ACCOUNTS,
    APPENDIX_ASSETS,
    APPENDIX_CONTACTS,
    write_crm,
    write_csv,
    write_tenant,
)


def snapshot(root):
    config = load_config(root / "cs_pipeline.yaml")
    return config, extract_snapshot(CrmFilesSource(files_dir=str(config.crm.files_dir)), config)


def test_default_mapping_with_fallbacks_and_attributes(tmp_path):
    write_tenant(tmp_path)
    write_crm(
        tmp_path / "crm",
        [
            {"Id": "001A", "External_Id__c": " XYZ ", "Name": "Acme INC", "Customer_Since__c": "2024-03-01",
             "CreatedDate": "2020-01-01T00:00:00.000+0000", "CSM_Risk__c": "3 - HIGH", "Segment__c": ""},
            # no External_Id__c: the Salesforce Id is the account ID; no Customer_Since__c: CreatedDate
            {"Id": "001B", "External_Id__c": "", "Name": "Acme Boston", "ParentId": "001A",
             "CreatedDate": "2025-11-10T23:30:00.000-0500"},
            {"Id": "001C", "External_Id__c": "GONE", "Name": "Deleted", "IsDeleted": "true"},
        ],
    )  # fmt: skip
    config, frames = snapshot(tmp_path)
    accounts = frames["crm_accounts_raw"]
    assert accounts["account_id"].to_list() == ["XYZ", "001B"]
    assert accounts["create_date"].to_list() == ["2024-03-01", "2025-11-10T23:30:00.000-0500"]
    # blank attributes are left out rather than stored as empty text
    assert accounts["attributes"].to_list() == [[{"key": "csm_risk", "value": "3 - HIGH"}], []]

    resolution = resolve_accounts(
        accounts, frames["crm_assets_raw"], status_catalog=config.status_catalog(), product_separator="_"
    )
    rows = {r["account_id"]: r for r in resolution.accounts.iter_rows(named=True)}
    assert rows["001B"]["parent_id"] == "XYZ"  # ParentId translated to the parent's account_id
    assert rows["001B"]["create_date"] == date(2025, 11, 11)  # CreatedDate's UTC date


def test_attributes_are_each_records_own_in_key_order_without_blanks(tmp_path):
    write_tenant(tmp_path)  # attributes csm_risk (CSM_Risk__c) and segment (Segment__c)
    write_crm(
        tmp_path / "crm",
        [
            {"Id": "001A", "Name": "both", "CSM_Risk__c": " 1 - LOW ", "Segment__c": "SMB"},
            {"Id": "001D", "Name": "deleted", "CSM_Risk__c": "x", "IsDeleted": "TRUE"},
            {"Id": "001B", "Name": "segment only", "CSM_Risk__c": "   ", "Segment__c": "Enterprise"},
            {"Id": "001C", "Name": "none", "CSM_Risk__c": "", "Segment__c": " "},
        ],
    )  # fmt: skip
    _, frames = snapshot(tmp_path)
    accounts = frames["crm_accounts_raw"]
    assert accounts["account_id"].to_list() == ["001A", "001B", "001C"]
    assert accounts["attributes"].to_list() == [
        [{"key": "csm_risk", "value": "1 - LOW"}, {"key": "segment", "value": "SMB"}],
        [{"key": "segment", "value": "Enterprise"}],
        [],
    ]


def test_missing_mapped_column_names_the_file_and_field(tmp_path):
    write_tenant(tmp_path)
    header = [name for name in ACCOUNT_HEADER if name != "Status__c"]
    write_csv(tmp_path / "crm" / "Account.csv", header, [{"Id": "001A", "Name": "x"}])
    with pytest.raises(CrmSourceError, match=r"Account\.csv: has no column Status__c"):
        snapshot(tmp_path)


def test_missing_account_export_is_an_error_but_missing_assets_are_none(tmp_path):
    write_tenant(tmp_path)
    (tmp_path / "crm" / "Asset.csv").unlink()
    _, frames = snapshot(tmp_path)
    assert frames["crm_assets_raw"].height == 0
    (tmp_path / "crm" / "Account.csv").unlink()
    with pytest.raises(CrmSourceError, match=r"Account\.csv: does not exist"):
        snapshot(tmp_path)


def test_mapping_override_from_config(tmp_path):
    config_path = write_tenant(tmp_path)
    config_path.write_text(
        config_path.read_text().replace(
            "account: {attributes: {csm_risk: CSM_Risk__c, segment: Segment__c}}",
            "account: {name: [Segment__c, Name], attributes: {}}",
        )
    )
    _, frames = snapshot(tmp_path)
    assert frames["crm_accounts_raw"].select("account_id", "name").rows() == [
        ("XYZ", "Enterprise"),
        ("ABC", "Mid-Market"),
    ]
    assert frames["crm_accounts_raw"]["attributes"].to_list() == [[], []]
    assert frames["crm_contacts_raw"].schema["user_id"] == pl.String


# Dated exports (docs/data-model.md#dated-exports): three full exports, each naming its own
# status for XYZ so that the status read tells which export a day read.
EXPORTS = {"2025-11-05": "Trial", "2025-11-12": "Pro", "2025-11-19": "Enterprise"}


def write_dated_exports(crm_dir, exports=EXPORTS):
    for day, status in exports.items():
        write_crm(crm_dir / f"date={day}", [{**APPENDIX_ACCOUNTS[0], "Status__c": status}])


def read_as_of(root, day: str):
    config = load_config(root / "cs_pipeline.yaml")
    reading = CrmFilesSource(files_dir=str(config.crm.files_dir)).as_of(date.fromisoformat(day))
    accounts = extract_snapshot(reading.source, config)["crm_accounts_raw"]
    return reading, accounts["status"].to_list()


@pytest.mark.parametrize(
    ("day", "export", "status", "warned"),
    [
        ("2025-11-01", "2025-11-05", "Trial", True),  # before the first export: the oldest
        ("2025-11-12", "2025-11-12", "Pro", False),  # on an export's date: that export
        ("2025-11-15", "2025-11-12", "Pro", False),  # between two: the earlier
        ("2025-12-31", "2025-11-19", "Enterprise", False),  # after the last: the last
    ],
)
def test_a_day_reads_the_newest_dated_export_on_or_before_it(tmp_path, day, export, status, warned):
    write_tenant(tmp_path)
    crm = tmp_path / "crm"
    for name in ("Account.csv", "Asset.csv", "Contact.csv"):
        (crm / name).unlink()
    write_dated_exports(crm)
    (crm / "archive").mkdir()  # other entries are not exports: ignored
    (crm / "README.txt").write_text("monthly exports")
    reading, statuses = read_as_of(tmp_path, day)
    assert statuses == [status]
    assert reading.metadata["export_date"] == export
    assert reading.metadata["export_folder"] == str(crm / f"date={export}")
    assert (reading.warning is not None) == warned
    if warned:
        assert "no CRM export dated on or before 2025-11-01" in reading.warning and "date=2025-11-05" in reading.warning


def test_undated_export_files_are_read_as_they_are(tmp_path):
    write_tenant(tmp_path)
    reading, statuses = read_as_of(tmp_path, "2025-11-20")
    assert statuses == ["Enterprise", "pro"]
    assert "export_date" not in reading.metadata and reading.warning is None


def test_dated_folders_beside_loose_csv_files_are_an_error_naming_the_folder(tmp_path):
    write_tenant(tmp_path)  # crm/Account.csv, Asset.csv, Contact.csv
    write_dated_exports(tmp_path / "crm")
    with pytest.raises(CrmSourceError) as raised:
        read_as_of(tmp_path, "2025-11-20")
    message = str(raised.value)
    assert message.startswith(f"CRM export {tmp_path / 'crm'}: holds both dated export folders")
    assert "date=2025-11-05" in message and "Account.csv" in message


@pytest.mark.parametrize("name", ["date=2026-02-30", "date=2026-1-5", "date=", "date=2025-11-05T00:00"])
def test_a_date_folder_without_a_real_date_is_an_error_naming_it(tmp_path, name):
    write_tenant(tmp_path)
    crm = tmp_path / "crm"
    for file in ("Account.csv", "Asset.csv", "Contact.csv"):
        (crm / file).unlink()
    write_dated_exports(crm)
    (crm / name).mkdir()
    with pytest.raises(CrmSourceError, match=re.escape(f"CRM export {crm / name}: is not named date=YYYY-MM-DD")):
        read_as_of(tmp_path, "2025-11-20")


@pytest.mark.e2e  # runs the pipeline through the CLI
def test_a_backfill_over_two_dated_exports_records_the_changes_on_the_second_ones_date(tmp_path, monkeypatch):
    """The seed tenant exported on 2025-11-20 and 2025-11-21; on the 21st Acme Boston (ABC) has
    cancelled and Acme INC (XYZ) moved from Enterprise to Pro. A backfill of 11-19 … 11-21 reads
    the 11-20 export on the 19th (the oldest) and the 20th, the 11-21 export on the 21st."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    config = write_tenant(tmp_path)
    crm = tmp_path / "crm"
    for name in ("Account.csv", "Asset.csv", "Contact.csv"):
        (crm / name).unlink()
    write_crm(crm / "date=2025-11-20", APPENDIX_ACCOUNTS, APPENDIX_ASSETS, APPENDIX_CONTACTS)
    later = [{**APPENDIX_ACCOUNTS[0], "Status__c": "Pro"}, {**APPENDIX_ACCOUNTS[1], "Status__c": "Cancelled"}]
    write_crm(crm / "date=2025-11-21", later, APPENDIX_ASSETS, APPENDIX_CONTACTS)

    assert cli.main(["--config", str(config), "backfill", "--start", "2025-11-19", "--end", "2025-11-21"]) == 0

    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as con:
        changes = con.execute(
            "SELECT date::VARCHAR, account_id, kind, previous_status, status FROM status_changes ORDER BY ALL"
        ).fetchall()
    # the 19th, the first snapshot date: every account of the 11-20 export is new; the 20th
    # reads the same export: no change; the 21st: ABC churns, and so does ABC_Widget1, whose
    # holding has no status of its own (ABC_Widget2 keeps its own Trial); XYZ changes plan.
    assert changes == [
        ("2025-11-19", "ABC", "new", None, "Pro"),
        ("2025-11-19", "ABC_Widget1", "new", None, "Pro"),
        ("2025-11-19", "ABC_Widget2", "new", None, "Trial"),
        ("2025-11-19", "XYZ", "new", None, "Enterprise"),
        ("2025-11-19", "XYZ_Widget1", "new", None, "Enterprise"),
        ("2025-11-21", "ABC", "churn", "Pro", "Cancelled"),
        ("2025-11-21", "ABC_Widget1", "churn", "Pro", "Cancelled"),
        ("2025-11-21", "XYZ", "plan_change", "Enterprise", "Pro"),
        ("2025-11-21", "XYZ_Widget1", "plan_change", "Enterprise", "Pro"),
    ]
    instance = dg.DagsterInstance.get()
    read = {}
    for day in ("2025-11-19", "2025-11-20", "2025-11-21"):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=dg.AssetKey("crm_snapshot"), asset_partitions=[day]), limit=1
        ).records
        read[day] = records[0].asset_materialization.metadata["export_date"].value
    assert read == {"2025-11-19": "2025-11-20", "2025-11-20": "2025-11-20", "2025-11-21": "2025-11-21"}
