"""CRM export files: the default field mapping, fallbacks and clear errors
(docs/data-model.md#crm-objects-and-field-mapping, #crm-export-files)."""

from datetime import date

import polars as pl
import pytest

from cs_pipeline.config import load_config
from cs_pipeline.crm.mapping import extract_snapshot
from cs_pipeline.crm.sources import CrmFilesSource, CrmSourceError
from cs_pipeline.lib.hierarchy import resolve_accounts
from cs_pipeline_tests.support.tenant import ACCOUNT_HEADER, write_crm, write_csv, write_tenant


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
